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

namespace iris::bench {

struct Options {
  std::vector<std::string> models;  // names of configs/models/*.json, or paths to config.json files
  int seq = 4096;                   // T
  int micro_batch = 1;              // B
  int grad_accum = 8;               // micro-batches per optimizer step
  int steps = 10;                   // timed optimizer steps
  int warmup_steps = 3;             // steps run first and left out of the averages
  std::string device = "cuda";      // cuda | cpu
  std::string recompute = "auto";   // none | selective | full | auto (the least that fits)
  std::string torch_checkpointing = "auto";  // off | on | auto (on only when off runs out of memory)
  std::string torch_compile = "auto";        // auto | off
  bool run_iris = true, run_torch = true;
  std::string python = "python3";
  std::string out = "runs/iris-bench";
  std::string iris_train;           // "" = the iris-train beside this program
  std::string torch_script;         // "" = the copy built into this program
  double peak_tflops = 0;           // > 0: passed as train.peak_tflops and used for both MFUs
  int threads = 0;                  // CPU threads for both sides (0: OMP_NUM_THREADS, else all cores)
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
  std::vector<std::string> attempts;     // each run tried, with its log
  nlohmann::json raw;                    // what the child reported
};

struct ModelResult {
  std::string name;                // as given in --models
  std::string config_path;         // the config.json both sides used (a copy in --out)
  long long parameters = 0;
  double flops_per_token = 0;      // plan::flops_per_token at this seq (docs/design.md, "Performance")
  std::optional<double> peak_tflops;  // the peak both MFUs are over (--peak-tflops, or Iris's own)
  SideResult iris, torch;
};

// Resolves a --models entry to a config.json written under out/models/; the named configs/models
// files are built into the program, so a bundle needs no configs folder.
std::string materialize_model_config(const std::string& name, const std::string& out_dir);
// "llama3.2-1b" for "llama3.2-1b" and for "dir/llama3.2-1b.json" (a path's .stem() would cut at ".2").
std::string model_stem(const std::string& name);

SideResult run_iris(const Options& opt, const std::string& name, const std::string& config_path,
                    const std::string& dataset_prefix);
SideResult run_torch(const Options& opt, const std::string& name, const std::string& config_path);

// Writes a dataset of uniformly random tokens in [0, vocab) (Megatron indexed format) with at least
// `tokens` tokens to PREFIX.{bin,idx}, unless one of that size is already there.
void write_random_dataset(const std::string& prefix, int vocab_size, long long tokens);

// Fills in MFUs from the shared peak, prints the table of each model and the targets, and writes
// out/results.json.
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
bool log_says_out_of_memory(const std::string& log_path);
std::string log_tail(const std::string& log_path, int lines);

// Files built into the program (generated from bench/torch_llama_step.py and configs/models/*.json).
extern const char* const kTorchScript;
struct EmbeddedConfig {
  const char* name;  // file stem, e.g. "llama2-7b"
  const char* json;
};
extern const EmbeddedConfig kModelConfigs[];
extern const int kNumModelConfigs;

}  // namespace iris::bench
