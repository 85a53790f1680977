// iris-bench: Iris's training step against PyTorch's (transformers LlamaForCausalLM) on the same model,
// shapes and random tokens, run one after the other in one invocation. Each side runs as a child process
// (iris-train, and torch_llama_step.py under --python) whose log stays in --out; this driver only
// prepares inputs, reads what the children report and prints the comparison. Nothing here times
// anything itself: tokens/s come from iris-train's metrics.jsonl and the torch script's JSON line.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/model/llama_config.h"

#include "src/core/device.h"

namespace iris::bench {

struct Options {
  std::vector<std::string> models;  // names of configs/models/*.json, or paths to config.json files
  int seq = 4096;                   // T
  int micro_batch = 1;              // B
  int grad_accum = 8;               // micro-batches per optimizer step
  int steps = 10;                   // timed optimizer steps
  int warmup_steps = 3;             // steps run first and left out of the averages
  std::string device = "cuda";      // cuda | cpu
  Device device_kind = Device::Cuda;  // parsed from device
  std::string recompute = "auto";   // none | selective | full | auto (the least the planner fits)
  std::string torch_checkpointing = "off";   // off | on (no retry after an out-of-memory)
  std::string torch_compile = "auto";        // auto | off
  bool run_iris = true, run_torch = true;
  std::string python = "python3";
  std::string out = "runs/iris-bench";
  std::string iris_train;           // "" = the iris-train beside this program
  std::string torch_script;         // "" = the copy built into this program
  double peak_tflops = 0;           // > 0: passed as train.peak_tflops and used for both MFUs
  int threads = 0;                  // CPU threads for both sides (0: OMP_NUM_THREADS, else all cores)
  std::string gpu;                  // cuda: the configs/hardware/gpus.json entry the planner plans for
  std::string hardware;             // "" = the gpus.json built into this program
  double memory_gib = 0;            // cpu: the planner's budget (0: MemAvailable)
  bool plan_only = false;           // print the planner's answer and stop
  bool fit_layers = false;          // run as many of the model's layers as fit, when all do not
  std::vector<std::string> iris_args;  // extra iris-train settings, KEY=VALUE
};

// The planner's answer for the Iris side, before anything runs (bench_checks.cpp).
struct FitDecision {
  bool fits = false;
  std::string recompute;            // the mode to run with (--recompute auto resolved)
  int layers = 0;                   // L to run: the model's, or fewer with --fit-layers
  double need_gib = 0, have_gib = 0;  // one rank's planned peak, and the device's (or host's) memory
  std::string why;                  // one line: what fits, or why nothing does
};

// One side's outcome. ok = false with `error` set when it did not run to the end.
struct SideResult {
  bool ok = false;
  std::string error;
  double tokens_per_s = 0;
  std::optional<double> mfu;             // null when the peak is unknown
  std::optional<double> peak_memory_mib;
  std::string peak_memory_kind;          // which figure peak_memory_mib is
  std::string memory_saving;             // Iris: recompute used; PyTorch: gradient checkpointing or not
  std::vector<std::string> notes;        // fallbacks and settings worth printing
  std::vector<std::string> attempts;     // the run, with its log
  std::vector<double> losses;            // per step, warm-up included
  std::string validity;                  // "valid", or "INVALID: why" (then no speed is reported)
  nlohmann::json raw;                    // what the child reported
  bool valid() const { return ok && validity == "valid"; }
};

struct ModelResult {
  std::string name;                // as given in --models
  std::string config_path;         // the config.json both sides used (a copy in --out)
  long long parameters = 0;
  double flops_per_token = 0;      // plan::flops_per_token at this seq (docs/design.md, "Performance")
  std::optional<double> peak_tflops;  // the peak both MFUs are over (--peak-tflops, or Iris's own)
  int layers = 0, model_layers = 0;   // L run (fewer with --fit-layers) of the model's L
  FitDecision fit;
  bool ran_iris = false, ran_torch = false;  // the sides run so far
  SideResult iris, torch;
};

// --- the planner before, the losses after (bench_checks.cpp) ---
FitDecision plan_fit(const Options& opt, const LlamaConfig& config);
// config.json with num_hidden_layers = layers, written to path; returns path.
std::string write_layers_config(const LlamaConfig& config, int layers, const std::string& path);
constexpr double kFirstLossTolerance = 0.3;
// The expected first loss of a random init (ln V + C·std²/2, bench_checks.cpp says why).
double init_loss(const LlamaConfig& config);
// "valid", or "INVALID: why": the first loss within kFirstLossTolerance of init_loss, and (must_fall) the last
// step's loss below the first step's and the first timed step's.
std::string loss_verdict(const std::vector<double>& losses, const LlamaConfig& config, int warmup_steps, bool must_fall);

// Resolves a --models entry to a config.json written under out/models/; the named configs/models
// files are built into the program, so a bundle needs no configs folder.
std::string materialize_model_config(const std::string& name, const std::string& out_dir);
// "llama3.2-1b" for "llama3.2-1b" and for "dir/llama3.2-1b.json" (a path's .stem() would cut at ".2").
std::string model_stem(const std::string& name);

SideResult run_iris(const Options& opt, const std::string& name, const std::string& config_path,
                    const std::string& dataset_prefix, const std::string& recompute);
SideResult run_torch(const Options& opt, const std::string& name, const std::string& config_path);

// Writes a dataset of random tokens in [0, vocab), skewed towards small ids (V·u⁴, u uniform: an entropy
// 1.6 nats below ln V, so a model that learns shows a falling loss within a few steps), in Megatron's
// indexed format with at least `tokens` tokens to PREFIX.{bin,idx}, unless one of that size is there.
void write_random_dataset(const std::string& prefix, int vocab_size, long long tokens);

// Fills in MFUs from the shared peak, prints the table of the last model (the sides run so far) and the
// targets, and writes out/results.json with every model so far: called after each side.
void report(const Options& opt, std::vector<ModelResult>& results);

// --- process helpers (bench_process.cpp) ---
std::string shell_quote(const std::string& s);
std::string shell_command(const std::vector<std::string>& argv);  // argv quoted for a shell, to print
// Runs `argv` with stdout and stderr to `log` (environment: this process's plus `env` entries
// "K=V"); returns the exit status (128 + signal when killed).
int run_logged(const std::vector<std::string>& argv, const std::string& log, const std::vector<std::string>& env = {});
std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text);
std::string executable_dir();  // the folder of this program (/proc/self/exe)
bool log_says_out_of_memory(const std::string& log_path);  // to name the cause of a failure
std::string log_tail(const std::string& log_path, int lines);

// Files built into the program (generated from bench/torch_llama_step.py and configs/models/*.json).
extern const char* const kTorchScript;
extern const char* const kGpuTable;  // configs/hardware/gpus.json
struct EmbeddedConfig {
  const char* name;  // file stem, e.g. "llama2-7b"
  const char* json;
};
extern const EmbeddedConfig kModelConfigs[];
extern const int kNumModelConfigs;

}  // namespace iris::bench
