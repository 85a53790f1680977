#include "src/train/config.h"

#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "parallel/device_comm.h"
#include "src/core/check.h"
#include "src/model/llama.h"

namespace po = boost::program_options;

namespace iris {
namespace {

// eval.batches: a positive count, or "all" (0).
int parse_eval_batches(const std::string& text, const char* key) {
  if (text == "all") return 0;
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  IRIS_USER_CHECK(used == text.size() && used > 0 && n > 0, "{} must be a positive number of batches or 'all', got \"{}\"",
                  key, text);
  return n;
}

// One key: its name, help, and how to bind and print it. The list below is the single place keys
// are declared; options, INI output and help all come from it.
struct Key {
  std::string name;
  std::string help;
  std::function<po::value_semantic*()> semantic;
  std::function<std::string()> print;
};

// The spellings of an enum-like key's values, in the order the error message lists them.
template <typename E>
using Spellings = std::vector<std::pair<E, const char*>>;

const Spellings<Task> kTasks = {{Task::Pretrain, "pretrain"}, {Task::Sft, "sft"}};
const Spellings<DType> kGradDTypes = {{DType::F32, "fp32"}, {DType::BF16, "bf16"}};
const Spellings<OverlapGradReduce> kOverlaps = {
    {OverlapGradReduce::Auto, "auto"}, {OverlapGradReduce::On, "true"}, {OverlapGradReduce::Off, "false"}};
const Spellings<LrScheduleKind> kSchedules = {{LrScheduleKind::Cosine, "cosine"},
                                              {LrScheduleKind::Linear, "linear"},
                                              {LrScheduleKind::Constant, "constant"},
                                              {LrScheduleKind::Wsd, "wsd"}};

template <typename E>
const char* spelling(const Spellings<E>& spellings, E value) {
  for (const auto& [v, text] : spellings)
    if (v == value) return text;
  return "?";
}

// "a, b or c"
template <typename E>
std::string listing(const Spellings<E>& spellings) {
  std::string out;
  for (size_t i = 0; i < spellings.size(); ++i)
    out += (i == 0 ? "" : i + 1 == spellings.size() ? " or " : ", ") + std::string(spellings[i].second);
  return out;
}

template <typename E>
E parse_spelling(const Spellings<E>& spellings, const std::string& text, const std::string& key) {
  for (const auto& [v, spelt] : spellings)
    if (text == spelt) return v;
  throw UserError(fmt::format("{} must be {}, got \"{}\"", key, listing(spellings), text));
}

// An enum-like key: read as text, parsed into `field` once when the options are notified by `parse`
// (text, key name), printed by `print`.
template <typename E, typename Parse, typename Print>
Key choice(const char* name, E* field, Parse parse, Print print, const char* help) {
  auto text = std::make_shared<std::string>(print(*field));
  return Key{name, help,
             [=]() {
               return po::value<std::string>(text.get())->default_value(*text)->notifier(
                   [=](const std::string& value) { *field = parse(value, name); });
             },
             [=]() { return std::string(print(*field)); }};
}

// One of the keys whose spellings this file owns.
template <typename E>
Key choice(const char* name, E* field, const Spellings<E>& spellings, const char* help) {
  return choice(
      name, field, [&spellings](const std::string& text, const char* key) { return parse_spelling(spellings, text, key); },
      [&spellings](E value) { return spelling(spellings, value); }, help);
}

template <typename T>
Key key(const char* name, T* field, const char* help) {
  return Key{name, help, [field]() { return po::value<T>(field)->default_value(*field); },
             [field]() {
               std::ostringstream s;
               s << std::boolalpha << *field;
               return s.str();
             }};
}

std::vector<Key> keys_of(RunConfig& c) {
  return {
      key("model.config", &c.model.config, "Hugging Face config.json of the model"),
      key("model.hf_dir", &c.model.hf_dir, "start from the weights of this Hugging Face directory (safetensors)"),
      key("model.init_checkpoint", &c.model.init_checkpoint,
          "start from the weights only (not optimizer or data position) of this Iris checkpoint directory"),
      key("data.path", &c.data.path, "indexed dataset prefix (PREFIX.bin and PREFIX.idx) from iris-tokenize"),
      key("data.paths", &c.data.paths, "blend of datasets \"W1 PREFIX1 W2 PREFIX2 ...\" (weights are normalised)"),
      key("data.split", &c.data.split, "train,valid shares of each dataset's documents, e.g. \"98,2\" (empty: all train)"),
      key("data.val_fraction", &c.data.val_fraction,
          "instead of data.split: ceil(fraction × documents) of each dataset, drawn by a seeded shuffle (train.seed), "
          "for validation only (SFT: samples); HF's train_test_split(test_size=fraction)"),
      key("data.tokenizer", &c.data.tokenizer, "tokenizer file the data was tokenized with (sentencepiece, tiktoken tokenizer.model or tokenizer.json)"),
      key("train.seq_len", &c.train.seq_len, "sequence length T"),
      key("train.micro_batch", &c.train.micro_batch, "samples per micro-batch on one rank"),
      key("train.grad_accum", &c.train.grad_accum, "micro-batches per optimizer step on one rank"),
      key("train.steps", &c.train.steps, "optimizer steps"),
      key("train.epochs", &c.train.epochs,
          "instead of train.steps: passes over the training data (fractions allowed); the run takes "
          "ceil(samples × epochs / global batch) steps, samples being pretraining windows or packed SFT rows"),
      key("train.seed", &c.train.seed, "seed of the initial weights and the data order"),
      key("train.log_every", &c.train.log_every, "print a progress line every N steps"),
      key("train.time_limit", &c.train.time_limit,
          "checkpoint and exit (status 42) before this wall-clock budget ends: seconds (3600, 90s, 30m, 2h) or "
          "Slurm's forms (M:S, H:M:S, D-H, D-H:M, D-H:M:S); the Slurm job's end time counts too"),
      key("train.peak_tflops", &c.train.peak_tflops,
          "peak TFLOP/s of one rank's device, for MFU in metrics.jsonl (0: on cuda the dense bf16 peak of the GPU "
          "from a table by device name, else unknown and mfu is null; the CPU backend has no table, so give e.g. "
          "your cores' measured SGEMM peak)"),
      choice("train.device", &c.train.device, parse_device, [](Device d) { return to_string(d); },
          "cpu (fp32 reference backend) or cuda (bf16 weights and activations, fp32 gradients and master weights, "
          "one GPU per rank with parallel.comm=nccl, or shared with mpi)"),
      choice("train.grad_dtype", &c.train.grad_dtype, kGradDTypes,
          "fp32 | bf16: the parameter gradients of train.device=cuda (bf16: accumulated over the micro-batches in "
          "a bf16 buffer, 2 instead of 4 bytes per parameter, each kernel still summing in fp32; the DP reduction, "
          "gradient norm and AdamW stay fp32; no overlapped gradient reduction). train.device=cpu is fp32 only"),
      key("train.exit_margin_s", &c.train.exit_margin_s,
          "stop at least this long before the time limit (more when steps or saves take longer)"),
      choice("train.recompute", &c.train.recompute, parse_recompute, [](Recompute r) { return to_string(r); },
          "activation recomputation: none | selective (recompute the attention core and SwiGLU in backward) | "
          "full (keep only each layer's input, recompute the layer); same results, less activation memory"),
      key("train.max_consecutive_skipped", &c.train.max_consecutive_skipped,
          "stop as diverged (exit status 3) after more than this many non-finite steps in a row (0: no limit)"),
      key("train.max_skipped_fraction", &c.train.max_skipped_fraction,
          "stop as diverged (exit status 3) when more than this fraction of the last 100 steps were non-finite "
          "(1: no limit)"),
      choice("train.task", &c.train.task, kTasks, "pretrain | sft (an iris-tokenize --sft dataset: only answer tokens in the loss)"),
      key("sft.packing", &c.sft.packing, "pack several SFT samples per row (false: one sample per row, padded)"),
      key("eval.every", &c.eval.every,
          "validation loss every N steps into metrics.jsonl (0: never; needs data.split or data.val_fraction)"),
      choice("eval.batches", &c.eval.batches, parse_eval_batches,
          [](int n) { return n == 0 ? std::string("all") : std::to_string(n); },
          "global batches of validation data per evaluation, or 'all' (the whole validation set, token-weighted)"),
      key("optim.lr", &c.optim.lr, "peak learning rate"),
      key("optim.min_lr", &c.optim.min_lr, "learning rate at the end of the decay"),
      choice("optim.schedule", &c.optim.schedule, kSchedules,
          "cosine | linear (decay from lr to min_lr after the warm-up) | constant (lr after the warm-up) | wsd "
          "(warm-up, stable at lr, cosine decay to min_lr over the last optim.decay_ratio of the run)"),
      key("optim.warmup_steps", &c.optim.warmup_steps, "linear warm-up steps"),
      key("optim.warmup_ratio", &c.optim.warmup_ratio,
          "instead of optim.warmup_steps: warm up over ceil(ratio × steps) steps (0: use warmup_steps)"),
      key("optim.decay_steps", &c.optim.decay_steps, "decay steps after the warm-up (0: the rest of the run, so the last step is at min_lr; wsd: see decay_ratio)"),
      key("optim.decay_ratio", &c.optim.decay_ratio,
          "optim.schedule=wsd with decay_steps = 0: decay over the last ceil(ratio × steps) steps"),
      key("optim.weight_decay", &c.optim.weight_decay, "AdamW decoupled weight decay (matrices only)"),
      key("optim.beta1", &c.optim.beta1, "AdamW beta1"),
      key("optim.beta2", &c.optim.beta2, "AdamW beta2"),
      key("optim.eps", &c.optim.eps, "AdamW epsilon"),
      key("optim.grad_clip", &c.optim.grad_clip, "clip the global gradient norm to this (0: off)"),
      key("parallel.tp", &c.parallel.tp, "tensor-parallel size"),
      key("parallel.pp", &c.parallel.pp, "pipeline-parallel size"),
      key("parallel.stage_layers", &c.parallel.stage_layers, "layers per pipeline stage, e.g. \"3,5\" (default: even)"),
      key("parallel.bucket_mb", &c.parallel.bucket_mb, "ZeRO-1 gradient reduce-scatter bucket, MiB per shard"),
      choice("parallel.overlap_grad_reduce", &c.parallel.overlap_grad_reduce, kOverlaps,
          "true: send each ZeRO-1 gradient bucket to its owner as soon as the last micro-batch's backward has "
          "finished it, overlapping the DP reduction with the rest of the backward; false: one bucketed "
          "reduce-scatter after the backward; auto: true with train.device=cuda and parallel.comm=nccl, else "
          "false (MPI progresses non-blocking collectives only inside MPI calls); train.grad_dtype=bf16 always uses "
          "the reduce-scatter"),
      key("parallel.timeout_s", &c.parallel.timeout_s,
          "abort the job when a collective or send/recv has not completed after this many seconds (0: wait forever)"),
      choice("parallel.comm", &c.parallel.comm, parse_comm_kind, [](CommKind k) { return to_string(k); },
          "communicator for GPU buffers: nccl (a GPU per rank) or mpi (MPI through host memory: GPUs may be "
          "shared by several ranks, and clusters without NCCL run)"),
      key("output.dir", &c.output.dir, "directory for metrics.jsonl, config.ini and logs"),
      key("output.save_weights", &c.output.save_weights, "write the final weights to output.dir/weights/"),
      key("output.tensorboard", &c.output.tensorboard,
          "rank 0 also writes the metrics as TensorBoard event files under output.dir/tb/"),
      key("checkpoint.dir", &c.checkpoint.dir, "write checkpoints to DIR/step_XXXXXXXX/ (empty: no checkpoints)"),
      key("checkpoint.every", &c.checkpoint.every, "save a checkpoint every N steps (0: only at the end)"),
      key("checkpoint.keep", &c.checkpoint.keep, "keep the newest K checkpoints (0: keep all)"),
      key("checkpoint.keep_best", &c.checkpoint.keep_best,
          "also keep the K checkpoints with the lowest checkpoint.best_metric, and point DIR/best at the lowest "
          "(needs eval.every, with checkpoint.every a multiple of it)"),
      key("checkpoint.best_metric", &c.checkpoint.best_metric, "the metric checkpoint.keep_best ranks by: val_loss"),
      key("checkpoint.load", &c.checkpoint.load, "resume from PATH, 'latest', 'best' (checkpoint.keep_best's) or 'auto' (latest in checkpoint.dir if any)"),
  };
}

po::options_description describe(std::vector<Key>& keys, std::string* config_file) {
  po::options_description desc("iris-train options (every key may also appear in the --config INI file as [section] key = value)");
  desc.add_options()("help", "print this help")("config", po::value<std::string>(config_file), "INI run configuration");
  for (auto& k : keys) desc.add_options()(k.name.c_str(), k.semantic(), k.help.c_str());
  return desc;
}

// Keys that say the same thing two ways (a count or a fraction): at most one of each pair may be given.
void check_alternatives(const po::variables_map& vm, const std::string& config_file) {
  const auto given = [&vm](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
  const std::string where = config_file.empty() ? "command line" : config_file;
  IRIS_USER_CHECK(!(vm["train.epochs"].as<double>() != 0 && given("train.steps")),
                  "{}: train.steps and train.epochs are both given; give one (epochs derive the steps)", where);
  IRIS_USER_CHECK(!(vm["optim.warmup_ratio"].as<double>() != 0 && given("optim.warmup_steps")),
                  "{}: optim.warmup_steps and optim.warmup_ratio are both given; give one", where);
  IRIS_USER_CHECK(!(vm["optim.decay_steps"].as<int>() != 0 && given("optim.decay_ratio")),
                  "{}: optim.decay_steps and optim.decay_ratio are both given; give one", where);
}

// The key another key replaces in this configuration (check_alternatives), or nullptr: to_ini writes it as
// a comment, so that its output is a valid run config again.
const char* superseded_by(const RunConfig& c, const std::string& name) {
  if (name == "train.steps" && c.train.epochs != 0) return "train.epochs";
  if (name == "optim.warmup_steps" && c.optim.warmup_ratio != 0) return "optim.warmup_ratio";
  if (name == "optim.decay_ratio" && c.optim.decay_steps != 0) return "optim.decay_steps";
  return nullptr;
}

}  // namespace

bool RunConfig::parse(int argc, const char* const* argv, RunConfig& out, std::string* help) {
  std::vector<Key> keys = keys_of(out);
  po::options_description desc = describe(keys, &out.config_file);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
  } catch (const po::unknown_option& e) {
    throw UserError(fmt::format("command line: unknown option '{}' (see --help for the keys)", e.get_option_name()));
  } catch (const po::error& e) {
    throw UserError(fmt::format("command line: {}", e.what()));
  }
  if (vm.count("help")) {
    if (help) {
      std::ostringstream s;
      s << desc;
      *help = s.str();
    }
    return false;
  }
  if (vm.count("config")) {
    const std::string path = vm["config"].as<std::string>();
    std::ifstream in(path);
    IRIS_USER_CHECK(in.good(), "run config {}: cannot open the file (does it exist?)", path);
    try {
      po::store(po::parse_config_file(in, desc, /*allow_unregistered=*/false), vm);
    } catch (const po::unknown_option& e) {
      std::string name = e.get_option_name();
      auto dot = name.find('.');
      throw UserError(fmt::format("run config {}: unknown key '{}' in section [{}] (see iris-train --help for the keys)",
                                  path, dot == std::string::npos ? name : name.substr(dot + 1),
                                  dot == std::string::npos ? "" : name.substr(0, dot)));
    } catch (const po::error& e) {
      throw UserError(fmt::format("run config {}: {}", path, e.what()));
    }
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw UserError(fmt::format("{}: {}", out.config_file.empty() ? "command line" : out.config_file, e.what()));
  }
  check_alternatives(vm, out.config_file);
  return true;
}

void RunConfig::validate() const {
  auto positive = [](long long v, const char* key) { IRIS_USER_CHECK(v > 0, "{} must be positive, got {}", key, v); };
  IRIS_USER_CHECK(!model.config.empty(), "model.config is required (a Hugging Face config.json, e.g. configs/models/tiny.json)");
  IRIS_USER_CHECK(!data.path.empty() || !data.paths.empty(),
                  "data.path (the PREFIX given to iris-tokenize --output) or data.paths (a blend) is required");
  IRIS_USER_CHECK(data.path.empty() || data.paths.empty(),
                  "data.path and data.paths are both set; give one dataset in data.path or a blend in data.paths");
  IRIS_USER_CHECK(model.hf_dir.empty() || model.init_checkpoint.empty(),
                  "model.hf_dir and model.init_checkpoint are both set; start from one of them");
  IRIS_USER_CHECK(model.init_checkpoint != "latest" && model.init_checkpoint != "auto",
                  "model.init_checkpoint={}: give a directory (a step_* checkpoint, or a checkpoint root holding "
                  "'latest'); to resume this run use checkpoint.load",
                  model.init_checkpoint);
  IRIS_USER_CHECK(eval.every >= 0, "eval.every must not be negative (0: no validation)");
  IRIS_USER_CHECK(eval.batches >= 0, "eval.batches must be positive or 'all', got {}", eval.batches);
  IRIS_USER_CHECK(data.val_fraction >= 0 && data.val_fraction < 1,
                  "data.val_fraction must be in [0, 1) (the share of documents for validation), got {}", data.val_fraction);
  IRIS_USER_CHECK(data.val_fraction == 0 || data.split.empty(),
                  "data.split and data.val_fraction are both set; give one (val_fraction draws a shuffled subset, "
                  "split takes the tail)");
  IRIS_USER_CHECK(eval.every == 0 || !data.split.empty() || data.val_fraction > 0,
                  "eval.every={} needs validation data: set data.val_fraction (e.g. 0.1) or data.split (e.g. \"98,2\")",
                  eval.every);
  positive(train.seq_len, "train.seq_len");
  positive(train.micro_batch, "train.micro_batch");
  positive(train.grad_accum, "train.grad_accum");
  positive(train.steps, "train.steps");
  IRIS_USER_CHECK(train.epochs >= 0, "train.epochs must not be negative (0: train.steps decides), got {}", train.epochs);
  IRIS_USER_CHECK(optim.warmup_ratio >= 0 && optim.warmup_ratio < 1,
                  "optim.warmup_ratio must be in [0, 1) (a fraction of the steps; 0: optim.warmup_steps), got {}",
                  optim.warmup_ratio);
  IRIS_USER_CHECK(optim.decay_ratio > 0 && optim.decay_ratio <= 1,
                  "optim.decay_ratio must be in (0, 1] (the fraction of the steps wsd decays over), got {}",
                  optim.decay_ratio);
  positive(train.log_every, "train.log_every");
  positive(parallel.tp, "parallel.tp");
  positive(parallel.pp, "parallel.pp");
  IRIS_USER_CHECK(parallel.bucket_mb > 0, "parallel.bucket_mb must be positive, got {}", parallel.bucket_mb);
  IRIS_USER_CHECK(optim.lr > 0, "optim.lr must be positive, got {}", optim.lr);
  IRIS_USER_CHECK(optim.min_lr >= 0 && optim.min_lr <= optim.lr, "optim.min_lr must be in [0, optim.lr], got {}",
                  optim.min_lr);
  IRIS_USER_CHECK(optim.warmup_steps >= 0, "optim.warmup_steps must not be negative");
  IRIS_USER_CHECK(optim.decay_steps >= 0, "optim.decay_steps must not be negative");
  IRIS_USER_CHECK(optim.beta1 >= 0 && optim.beta1 < 1, "optim.beta1 must be in [0, 1)");
  IRIS_USER_CHECK(optim.beta2 >= 0 && optim.beta2 < 1, "optim.beta2 must be in [0, 1)");
  IRIS_USER_CHECK(optim.eps > 0, "optim.eps must be positive");
  IRIS_USER_CHECK(optim.weight_decay >= 0, "optim.weight_decay must not be negative");
  IRIS_USER_CHECK(checkpoint.every >= 0, "checkpoint.every must not be negative (0: save only at the end)");
  IRIS_USER_CHECK(checkpoint.keep >= 0, "checkpoint.keep must not be negative (0: keep all)");
  IRIS_USER_CHECK(checkpoint.keep_best >= 0, "checkpoint.keep_best must not be negative (0: off)");
  IRIS_USER_CHECK(checkpoint.best_metric == "val_loss", "checkpoint.best_metric must be val_loss, got \"{}\"",
                  checkpoint.best_metric);
  IRIS_USER_CHECK(checkpoint.keep_best == 0 || eval.every > 0,
                  "checkpoint.keep_best={} ranks checkpoints by val_loss: set eval.every (and validation data)",
                  checkpoint.keep_best);
  IRIS_USER_CHECK(checkpoint.keep_best == 0 || checkpoint.every % std::max(eval.every, 1) == 0,
                  "checkpoint.keep_best needs a val_loss at every checkpoint: checkpoint.every={} must be a multiple of "
                  "eval.every={}", checkpoint.every, eval.every);
  IRIS_USER_CHECK(!(checkpoint.dir.empty() && (checkpoint.load == "latest" || checkpoint.load == "auto" ||
                                                checkpoint.load == "best")),
                  "checkpoint.load={} needs checkpoint.dir (the directory holding the 'latest' pointer)",
                  checkpoint.load);
  IRIS_USER_CHECK(optim.grad_clip >= 0, "optim.grad_clip must not be negative (0 disables clipping)");
  IRIS_USER_CHECK(parallel.timeout_s >= 0, "parallel.timeout_s must not be negative (0: no timeout), got {}",
                  parallel.timeout_s);
  if (parallel.comm == CommKind::Nccl) {
    const std::string unavailable = device_comm_unavailable_reason(CommKind::Nccl);
    IRIS_USER_CHECK(unavailable.empty(), "{}", unavailable);
  }
  if (train.device == Device::Cuda) {
    const std::string unavailable = device_comm_unavailable_reason(CommKind::Mpi);  // "" in every CUDA build
    IRIS_USER_CHECK(unavailable.empty(),
                    "train.device=cuda needs a CUDA build: {}; install the CUDA toolkit and reconfigure with nvcc "
                    "found (e.g. cmake -S . -B build -DIRIS_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc), "
                    "or use train.device=cpu",
                    unavailable);
  }
  IRIS_USER_CHECK(train.grad_dtype == DType::F32 || train.device == Device::Cuda,
                  "train.grad_dtype=bf16 needs train.device=cuda (the CPU backend keeps fp32 gradients); use "
                  "train.grad_dtype=fp32 or train.device=cuda");
  IRIS_USER_CHECK(train.peak_tflops >= 0, "train.peak_tflops must not be negative (0: unknown), got {}", train.peak_tflops);
  IRIS_USER_CHECK(train.exit_margin_s >= 0, "train.exit_margin_s must not be negative, got {}", train.exit_margin_s);
  IRIS_USER_CHECK(train.max_consecutive_skipped >= 0, "train.max_consecutive_skipped must be >= 0 (0: no limit), got {}",
                  train.max_consecutive_skipped);
  IRIS_USER_CHECK(train.max_skipped_fraction >= 0 && train.max_skipped_fraction <= 1,
                  "train.max_skipped_fraction must be in [0, 1] (1: no limit), got {}", train.max_skipped_fraction);
  time_limit_seconds();  // throws on a malformed value
}

const char* to_string(Task task) { return spelling(kTasks, task); }
Task parse_task(const std::string& text, const std::string& key) { return parse_spelling(kTasks, text, key); }
DType parse_float_dtype(const std::string& text, const std::string& key) {
  return parse_spelling(kGradDTypes, text, key);
}

double RunConfig::time_limit_seconds() const {
  const std::string& t = train.time_limit;
  if (t.empty()) return 0;
  const auto bad = [&t]() {
    return UserError(fmt::format("train.time_limit: '{}' is not a duration; use seconds (3600, 90s, 30m, 2h) or "
                                 "Slurm's M:S, H:M:S, D-H, D-H:M, D-H:M:S",
                                 t));
  };
  const auto number = [&](const std::string& s) {
    IRIS_USER_CHECK(!s.empty() && s.find_first_not_of("0123456789.") == std::string::npos, "{}", bad().what());
    return std::stod(s);
  };
  double seconds = 0;
  if (t.find_first_of(":-") == std::string::npos) {
    const char unit = t.back();
    const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 0;
    seconds = scale > 0 ? number(t.substr(0, t.size() - 1)) * scale : number(t);
  } else {
    // Slurm's --time forms: with a day part, fields are H[:M[:S]]; without, M:S or H:M:S.
    double days = 0;
    std::string rest = t;
    if (const auto dash = t.find('-'); dash != std::string::npos) {
      days = number(t.substr(0, dash));
      rest = t.substr(dash + 1);
    }
    std::vector<double> fields;
    std::stringstream in(rest);
    for (std::string f; std::getline(in, f, ':');) fields.push_back(number(f));
    if (fields.empty() || fields.size() > 3) throw bad();
    if (t.find('-') != std::string::npos) {
      fields.resize(3, 0.0);  // D-H, D-H:M, D-H:M:S
    } else {
      if (fields.size() == 1) throw bad();
      if (fields.size() == 2) fields.insert(fields.begin(), 0.0);  // M:S
    }
    seconds = days * 86400 + fields[0] * 3600 + fields[1] * 60 + fields[2];
  }
  IRIS_USER_CHECK(seconds > 0, "train.time_limit must be positive, got '{}'", t);
  return seconds;
}

std::string RunConfig::to_ini() const {
  RunConfig copy = *this;
  std::vector<Key> keys = keys_of(copy);
  std::ostringstream s;
  s << "# Resolved iris-train configuration (defaults, config file and command line combined)\n";
  std::string section;
  for (const auto& k : keys) {
    auto dot = k.name.find('.');
    std::string sec = k.name.substr(0, dot);
    if (sec != section) {
      s << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    if (const char* by = superseded_by(*this, k.name))
      s << "# " << k.name.substr(dot + 1) << " = " << k.print() << "  (from " << by << ")\n";
    else
      s << k.name.substr(dot + 1) << " = " << k.print() << "\n";
  }
  return s.str();
}

LrSchedule RunConfig::lr_schedule(int total_steps) const {
  return make_lr_schedule(optim.schedule, optim.lr, optim.min_lr, total_steps, optim.warmup_steps, optim.warmup_ratio,
                          optim.decay_steps, optim.decay_ratio);
}

bool RunConfig::overlap_grad_reduce_requested() const {
  if (parallel.overlap_grad_reduce == OverlapGradReduce::Auto)
    return train.device == Device::Cuda && parallel.comm == CommKind::Nccl;
  return parallel.overlap_grad_reduce == OverlapGradReduce::On;
}

bool RunConfig::overlaps_grad_reduce() const {
  return overlap_grad_reduce_requested() && grad_dtype() != DType::BF16;
}

}  // namespace iris
