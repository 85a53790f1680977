// iris-slurm: writes an sbatch script for a training job (jobs/slurm/train.sbatch.in) or, with --task generate,
// for an iris-generate job (jobs/slurm/generate.sbatch.in), or with --task eval for an iris-eval job
// (jobs/slurm/eval.sbatch.in).
//   iris-slurm --task pretrain|sft|generate --model configs/models/llama2-7b.json --nodes 2 --gpus-per-node 8
//              [--gpu a100-80gb] [--layout auto|TP,PP] [--partition P] [--account A] [--time D-HH:MM:SS]
//              --data PREFIX [--tokenizer T] [--init-from DIR] [--run-config FILE] --output job.sbatch
//              [-- extra iris-train flags]
//   --sweep 1,2,4 [--sweep-layouts "TP,PP ..."]   a job array over node counts x layouts
//   --cpu-ranks N                                  a CPU-backend job (N ranks, no GPUs) for testing
// GPU jobs run iris-train with --train.device cuda, --parallel.comm nccl (--comm mpi: host-staged) and
// --train.recompute as given (--recompute, default none) and --train.grad_dtype (--grad-dtype, default
// fp32), which the planner's fit check also assumes.
// Refuses (exit 2, nothing written) when the layout cannot be cut from the GPUs, the planner says the
// model does not fit, or a data file is missing. Paths starting with '$' are left to the shell and
// checked by the script when it runs. Exit status: 0 written, 2 bad input, 1 internal failure.
#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "parallel/topology.h"
#include "src/core/check.h"
#include "src/core/error.h"
#include "src/plan/plan.h"
#include "parallel/device_comm.h"
#include "src/train/config.h"
#include "src/core/exit_codes.h"
#include "src/core/tool_main.h"

namespace {
namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace iris;

constexpr const char* kDefaultGpu = "a100-80gb";

struct Layout {
  int nodes = 1, tp = 1, pp = 1;
};

// The checkout this binary belongs to (bin/../..), else the current directory.
fs::path source_root() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(exe.parent_path() / "../../jobs/slurm/train.sbatch.in"))
    return fs::weakly_canonical(exe.parent_path() / "../..");
  return fs::current_path();
}

bool is_shell_path(const std::string& p) { return !p.empty() && p[0] == '$'; }

// Text for a double-quoted shell string: "$VAR/..." paths stay expandable, anything else is literal.
std::string shell_quoted_body(const std::string& s) {
  if (is_shell_path(s)) return s;
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
    out += c;
  }
  return out;
}

std::pair<int, int> parse_layout(const std::string& text) {
  int tp = 0, pp = 0;
  char extra = 0;
  IRIS_USER_CHECK(std::sscanf(text.c_str(), "%d,%d%c", &tp, &pp, &extra) == 2 && tp >= 1 && pp >= 1,
                  "a layout must be TP,PP with positive integers (e.g. 2,4), got \"{}\"", text);
  return {tp, pp};
}

std::vector<int> parse_int_list(const std::string& text, const char* what) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    IRIS_USER_CHECK(!item.empty() && *end == 0 && v >= 1, "{} must be a comma-separated list of positive integers, "
                    "got \"{}\"", what, text);
    out.push_back(static_cast<int>(v));
  }
  IRIS_USER_CHECK(!out.empty(), "{} is empty", what);
  return out;
}

std::string fill_template(const fs::path& path, const std::map<std::string, std::string>& values) {
  std::ifstream in(path);
  IRIS_USER_CHECK(in.good(), "cannot read the template {} (use --templates DIR)", path.string());
  std::stringstream text;
  text << in.rdbuf();
  std::string out;
  std::istringstream lines(text.str());
  static const std::regex placeholder("@([A-Z_]+)@");
  for (std::string line; std::getline(lines, line);) {
    std::string filled;
    auto last = line.cbegin();
    bool only_placeholders = true;
    for (std::sregex_iterator it(line.begin(), line.end(), placeholder), end; it != end; ++it) {
      const auto found = values.find((*it)[1].str());
      IRIS_CHECK(found != values.end(), "template {} uses unknown placeholder {}", path.string(), it->str());
      if (it->prefix().length() > 0) only_placeholders = false;
      filled.append(last, (*it)[0].first);
      filled += found->second;
      last = (*it)[0].second;
    }
    if (last != line.cend()) only_placeholders = false;
    filled.append(last, line.cend());
    if (filled.empty() && only_placeholders && !line.empty()) continue;  // an empty line placeholder
    out += filled + "\n";
  }
  return out;
}

struct Options {
  std::string task, gpu, partition, account, time, data, tokenizer, init_from, run_config, run_dir, name;
  std::string recompute = "none", comm = "nccl", grad_dtype = "fp32";
  Recompute recompute_mode = Recompute::None;  // parsed from recompute
  Task task_kind = Task::Pretrain;              // from task
  bool generate = false;                        // --task generate: an iris-generate job, not training
  bool eval = false;                            // --task eval: an iris-eval job
  std::string eval_task = "mcq", eval_format;   // --eval-task mcq|ppl|text, --eval-format (mcq)
  CommKind comm_kind = CommKind::Nccl;          // from comm
  DType grad_dtype_kind = DType::F32;           // from grad_dtype
  int nodes = 1, gpus_per_node = 8, cpu_ranks = 0, seq = 4096, micro_batch = 1, global_batch = 0;
  int signal_lead = 300;  // seconds before the time limit Slurm sends USR1 (0: no signal)
  std::vector<std::string> extra;
  std::string model, layout = "auto", sweep, sweep_layouts, iris_home, templates, hardware, output;
  std::string command;  // the iris-slurm command line, for the script's header
  std::string self;     // argv[0]: iris-train is found beside it
};

// One planned job of the script (an array task of a sweep, or the whole job).
struct PlannedJob {
  Layout layout;
  int grad_accum = 0;  // 0: the run config's (CPU test jobs)
};

// A job array: --sweep, or several --sweep-layouts on one node count.
bool is_sweep(const Options& o, const std::vector<PlannedJob>& jobs) { return !o.sweep.empty() || jobs.size() > 1; }

// The lines a sweep adds to the script (empty for a single job).
struct SweepLines {
  std::string array_line, block, srun_extra, mpirun_extra;
};

// The planner's Job for the options on this many GPUs, without its global batch.
plan::Job planner_job(const Options& o, int gpus) {
  plan::Job job;
  job.gpus = gpus;
  job.gpus_per_node = o.gpus_per_node;
  job.seq = o.seq;
  job.micro_batch = o.micro_batch;
  job.recompute = o.recompute_mode;
  job.bf16_grads = o.grad_dtype_kind == DType::BF16;
  return job;
}

// Fits the planner's Job to the options and checks (tp, pp) on nodes x gpus; returns grad_accum.
int check_gpu_layout(const LlamaConfig& config, const plan::GpuSpec& gpu, const Options& o, const Layout& l) {
  const int gpus = l.nodes * o.gpus_per_node;
  IRIS_USER_CHECK(gpus % (l.tp * l.pp) == 0, "{} node(s) x {} GPUs = {} GPUs cannot hold layout tp={} pp={}: the GPU "
                  "count must be a multiple of tp x pp = {}", l.nodes, o.gpus_per_node, gpus, l.tp, l.pp, l.tp * l.pp);
  IRIS_USER_CHECK(l.tp <= o.gpus_per_node, "tp={} is larger than --gpus-per-node {}: tensor parallelism must stay "
                  "inside a node", l.tp, o.gpus_per_node);
  plan::Job job = planner_job(o, gpus);
  const int dp = gpus / (l.tp * l.pp);
  job.global_batch = o.global_batch > 0 ? o.global_batch : dp * o.micro_batch;
  IRIS_USER_CHECK(job.global_batch % (dp * o.micro_batch) == 0, "--global-batch {} is not a multiple of dp x "
                  "micro-batch = {} x {} for layout tp={} pp={} on {} GPUs", job.global_batch, dp, o.micro_batch,
                  l.tp, l.pp, gpus);
  const plan::LayoutPlan p = plan::plan_layout(config, gpu, job, l.tp, l.pp);
  IRIS_USER_CHECK(p.refusal.empty(), "layout tp={} pp={} is impossible for {}: {}", l.tp, l.pp, config.source,
                  p.refusal);
  IRIS_USER_CHECK(p.fits, "{} does not fit on {} x {} with tp={} pp={} (iris-plan: {}); use more GPUs, another "
                  "layout, --layout auto or --recompute selective|full", config.source, gpus, gpu.name, l.tp, l.pp,
                  p.why_not);
  return job.global_batch / (dp * o.micro_batch);
}

// The planner's best fitting layout for this many nodes.
Layout auto_layout(const LlamaConfig& config, const plan::GpuSpec& gpu, const Options& o, int nodes) {
  plan::Job job = planner_job(o, nodes * o.gpus_per_node);
  job.global_batch = o.global_batch > 0 ? o.global_batch : job.gpus * o.micro_batch;
  for (const plan::LayoutPlan& p : plan::plan_all(config, gpu, job))
    if (p.refusal.empty() && p.fits && p.tp <= o.gpus_per_node) return {nodes, p.tp, p.pp};
  throw UserError(fmt::format("{} does not fit on {} node(s) x {} {} under any layout (iris-plan --model {} --gpus {} "
                              "--gpu {} --global-batch {} --recompute {} shows why); use more nodes or --recompute "
                              "selective|full", config.source, nodes, o.gpus_per_node, gpu.name, config.source,
                              job.gpus, gpu.name, job.global_batch, o.recompute));
}

void check_file(const std::string& path, const std::string& what) {
  if (path.empty() || is_shell_path(path)) return;
  IRIS_USER_CHECK(fs::exists(path), "{} {} does not exist", what, path);
}

void check_data(const Options& o) {
  IRIS_USER_CHECK(!o.data.empty(), "--data PREFIX is required (the tokenized dataset PREFIX.bin/.idx)");
  if (is_shell_path(o.data)) return;  // checked by the script at run time
  std::vector<std::string> files = {o.data + ".bin", o.data + ".idx"};
  if (o.task_kind == Task::Sft) files.insert(files.end(), {o.data + "_loss_mask.bin", o.data + "_loss_mask.idx"});
  for (const auto& f : files)
    IRIS_USER_CHECK(fs::exists(f), "data file {} does not exist (--data {}{}); tokenize with iris-tokenize first",
                    f, o.data, o.task_kind == Task::Sft ? ", an SFT dataset needs tokens and loss mask" : "");
}

// A path as the script should name it: inside the checkout as $IRIS_HOME/..., else absolute.
std::string script_path(const std::string& p, const fs::path& root) {
  if (p.empty() || is_shell_path(p)) return p;
  const fs::path abs = fs::weakly_canonical(fs::absolute(p));
  const fs::path rel = abs.lexically_relative(root);
  if (!rel.empty() && *rel.begin() != "..") return "$IRIS_HOME/" + rel.string();
  return abs.string();
}

std::string join_args(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + std::string("\"") + shell_quoted_body(a) + "\"";
  return out;
}

// Parses the command line into `o`; false when --help was asked (and printed).
bool parse_options(int argc, char** argv, Options& o) {
  po::options_description opts("iris-slurm options");
  opts.add_options()("help", "show this help")
      ("task", po::value(&o.task)->default_value("pretrain"), "pretrain | sft | generate | eval")
      ("eval-task", po::value(&o.eval_task)->default_value("mcq"), "--task eval: mcq | ppl | text (iris-eval's task)")
      ("eval-format", po::value(&o.eval_format), "--task eval --eval-task mcq: medmcqa | pubmedqa | generic")
      ("model", po::value(&o.model), "HF config.json of the model (e.g. configs/models/llama2-7b.json)")
      ("nodes", po::value(&o.nodes)->default_value(1), "nodes")
      ("gpus-per-node", po::value(&o.gpus_per_node)->default_value(8), "GPUs per node (one rank per GPU)")
      ("gpu", po::value(&o.gpu)->default_value(kDefaultGpu), "GPU type for the planner (configs/hardware/gpus.json)")
      ("layout", po::value(&o.layout)->default_value("auto"), "auto (the planner's best) or TP,PP")
      ("seq", po::value(&o.seq)->default_value(4096), "sequence length (train.seq_len)")
      ("micro-batch", po::value(&o.micro_batch)->default_value(1), "samples per micro-batch (train.micro_batch)")
      ("global-batch", po::value(&o.global_batch)->default_value(0), "samples per step (0: dp x micro-batch); "
                                                                      "sets train.grad_accum")
      ("recompute", po::value(&o.recompute)->default_value("none"), "activation recomputation none | selective | "
                                                                    "full (train.recompute; the planner assumes it)")
      ("grad-dtype", po::value(&o.grad_dtype)->default_value("fp32"), "gradient buffer of a GPU job: fp32 | bf16 "
                                                                      "(train.grad_dtype; the planner assumes it)")
      ("comm", po::value(&o.comm)->default_value("nccl"), "communicator of a GPU job: nccl | mpi (parallel.comm; mpi "
                                                          "stages through host memory)")
      ("partition", po::value(&o.partition), "Slurm partition")
      ("account", po::value(&o.account), "Slurm account")
      ("time", po::value(&o.time)->default_value("1-00:00:00"), "time limit, D-HH:MM:SS")
      ("signal-lead", po::value(&o.signal_lead)->default_value(300), "seconds before the time limit that Slurm "
       "sends USR1 (checkpoint and requeue); 0: no signal, the trainer's own deadline only")
      ("data", po::value(&o.data), "tokenized dataset prefix (PREFIX.bin/.idx; SFT: also PREFIX_loss_mask.*)")
      ("tokenizer", po::value(&o.tokenizer), "sentencepiece model the data was made with (data.tokenizer)")
      ("init-from", po::value(&o.init_from), "start from this HF directory or Iris checkpoint")
      ("run-config", po::value(&o.run_config), "INI run config for iris-train (--config)")
      ("run-dir", po::value(&o.run_dir), "metrics and checkpoints (default runs/<job name>, relative to the "
                                          "submit directory)")
      ("job-name", po::value(&o.name), "Slurm job name (default iris-<task>-<model>)")
      ("sweep", po::value(&o.sweep), "job array over these node counts, e.g. 1,2,4")
      ("sweep-layouts", po::value(&o.sweep_layouts), "layouts of the sweep, e.g. \"1,1 2,2\" (default: the "
                                                     "planner's best for each node count)")
      ("cpu-ranks", po::value(&o.cpu_ranks)->default_value(0), "CPU-backend test job: this many ranks in all, no "
                                                               "GPUs requested, tasks may share cores (--overcommit)")
      ("iris-home", po::value(&o.iris_home), "the Iris checkout as the script should name it (default: this one)")
      ("templates", po::value(&o.templates), "template directory (default jobs/slurm of the checkout)")
      ("hardware", po::value(&o.hardware), "GPU table (default configs/hardware/gpus.json)")
      ("output", po::value(&o.output), "the sbatch script to write")
      ("train-arg", po::value(&o.extra)->composing(), "extra iris-train flag (repeatable), e.g. "
                                                      "--train-arg=--train.steps=1000");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::ostringstream help;
    help << opts;
    throw UserError(fmt::format("{}\n{}", e.what(), help.str()));
  }
  if (vm.count("help")) {
    std::cout << opts;
    return false;
  }
  o.command = "iris-slurm";
  for (int i = 1; i < argc; ++i) o.command += std::string(" ") + argv[i];
  o.self = argv[0];
  return true;
}

// Every check of the options that needs no model or planner; parses --recompute.
void check_options(Options& o) {
  IRIS_USER_CHECK(!o.model.empty(), "--model is required (e.g. configs/models/llama2-7b.json)");
  IRIS_USER_CHECK(!o.output.empty(), "--output FILE is required (the sbatch script to write)");
  IRIS_USER_CHECK(o.signal_lead >= 0, "--signal-lead must not be negative, got {}", o.signal_lead);
  o.generate = o.task == "generate";  // not a training task: iris-slurm writes an iris-generate job
  o.eval = o.task == "eval";          // nor this: an iris-eval job
  if (!o.generate && !o.eval) o.task_kind = parse_task(o.task, "--task (or generate, eval)");
  IRIS_USER_CHECK(o.nodes >= 1 && o.gpus_per_node >= 1 && o.seq >= 1 && o.micro_batch >= 1 && o.cpu_ranks >= 0,
                  "--nodes, --gpus-per-node, --seq and --micro-batch must be positive");
  std::smatch t;
  IRIS_USER_CHECK(std::regex_match(o.time, t, std::regex(R"((?:(\d+)-)?(\d{1,2}):(\d{2}):(\d{2}))")),
                  "--time must be D-HH:MM:SS or HH:MM:SS, got \"{}\"", o.time);
  const long seconds = (t[1].matched ? std::stol(t[1]) * 86400 : 0) + std::stol(t[2]) * 3600 + std::stol(t[3]) * 60 +
                       std::stol(t[4]);
  // Slurm sends the signal as soon as less than the lead is left: a lead as long as the job checkpoints and
  // requeues it at its first step, every time.
  IRIS_USER_CHECK(o.signal_lead < seconds, "--signal-lead {} s is not shorter than --time {} ({} s): Slurm would "
                  "signal the job as it starts; use a longer --time or a shorter --signal-lead (0: none)",
                  o.signal_lead, o.time, seconds);
  o.recompute_mode = parse_recompute(o.recompute, "--recompute");
  o.comm_kind = parse_comm_kind(o.comm, "--comm");
  o.grad_dtype_kind = parse_float_dtype(o.grad_dtype, "--grad-dtype");
  IRIS_USER_CHECK(o.grad_dtype_kind == DType::F32 || o.cpu_ranks == 0,
                  "--grad-dtype bf16 is for GPU jobs (train.grad_dtype=bf16 needs train.device=cuda); drop it with "
                  "--cpu-ranks");
  if (o.generate || o.eval) return;  // write_generate_job / write_eval_job check their own inputs
  check_data(o);
  check_file(o.tokenizer, "--tokenizer");
  check_file(o.run_config, "--run-config");
  check_file(o.init_from, "--init-from");
}

// The (nodes, layout, grad_accum) of every job: asked for with --layout/--sweep-layouts or the planner's best,
// each checked against the ranks (CPU) or the planner's fit (GPU).
std::vector<PlannedJob> plan_jobs(const LlamaConfig& config, const Options& o, const fs::path& root) {
  const std::vector<int> node_counts = o.sweep.empty() ? std::vector<int>{o.nodes} : parse_int_list(o.sweep, "--sweep");
  std::vector<std::pair<int, int>> wanted;
  if (!o.sweep_layouts.empty()) {
    std::stringstream in(o.sweep_layouts);
    for (std::string item; in >> item;) wanted.push_back(parse_layout(item));
  } else if (o.layout != "auto") {
    wanted.push_back(parse_layout(o.layout));
  }
  std::vector<PlannedJob> jobs;
  for (int nodes : node_counts) {
    if (o.cpu_ranks > 0) {
      IRIS_USER_CHECK(o.cpu_ranks % nodes == 0, "--cpu-ranks {} cannot be spread evenly over {} node(s)", o.cpu_ranks,
                      nodes);
      for (auto [tp, pp] : wanted.empty() ? std::vector<std::pair<int, int>>{{1, 1}} : wanted) {  // CPU: pure dp
        IRIS_USER_CHECK(o.cpu_ranks % (tp * pp) == 0, "--cpu-ranks {} cannot hold layout tp={} pp={}: the rank count "
                        "must be a multiple of tp x pp = {}", o.cpu_ranks, tp, pp, tp * pp);
        validate_layout(config, tp, pp);
        jobs.push_back({{nodes, tp, pp}, 0});
      }
      continue;
    }
    const plan::GpuSpec gpu = plan::find_gpu(o.hardware.empty() ? root / "configs/hardware/gpus.json"
                                                                : fs::path(o.hardware), o.gpu);
    std::vector<Layout> layouts;
    if (wanted.empty()) layouts.push_back(auto_layout(config, gpu, o, nodes));
    for (auto [tp, pp] : wanted) layouts.push_back({nodes, tp, pp});
    for (const Layout& l : layouts) jobs.push_back({l, check_gpu_layout(config, gpu, o, l)});
  }
  return jobs;
}

// iris-train's flags common to every job of the script; a single job also gets its layout here.
std::vector<std::string> train_args(const Options& o, const std::vector<PlannedJob>& jobs, bool sweep) {
  const bool cpu = o.cpu_ranks > 0;
  std::vector<std::string> a;
  if (o.task_kind == Task::Sft) a.push_back("--train.task=sft");
  if (!cpu) a.insert(a.end(), {"--train.device", "cuda", "--parallel.comm", o.comm});  // one rank per GPU
  if (o.recompute_mode != Recompute::None) a.insert(a.end(), {"--train.recompute", o.recompute});
  if (o.grad_dtype_kind != DType::F32) a.insert(a.end(), {"--train.grad_dtype", o.grad_dtype});
  if (!sweep) {
    const PlannedJob& j = jobs[0];
    a.insert(a.end(), {"--parallel.tp", std::to_string(j.layout.tp), "--parallel.pp", std::to_string(j.layout.pp)});
    if (!cpu)
      a.insert(a.end(), {"--train.seq_len", std::to_string(o.seq), "--train.micro_batch", std::to_string(o.micro_batch),
                         "--train.grad_accum", std::to_string(j.grad_accum)});
  }
  a.insert(a.end(), o.extra.begin(), o.extra.end());
  return a;
}

// One array task per (nodes, layout); each runs on the first `nodes` nodes of the allocation and writes to its
// own RUN_DIR. Submit per node count to avoid idle nodes (see the title's lines).
SweepLines sweep_lines(const Options& o, const std::vector<PlannedJob>& jobs, int tasks_per_node) {
  SweepLines s;
  s.array_line = fmt::format("#SBATCH --array=0-{}\n", jobs.size() - 1);
  s.block = "# The sweep: one line per array task, \"nodes tp pp grad_accum\".\nSWEEP=(";
  for (size_t i = 0; i < jobs.size(); ++i)
    s.block += fmt::format("{}\"{} {} {} {}\"", i ? " " : "", jobs[i].layout.nodes, jobs[i].layout.tp,
                           jobs[i].layout.pp, jobs[i].grad_accum);
  s.block += ")\nread -r SWEEP_NODES SWEEP_TP SWEEP_PP SWEEP_ACCUM <<<\"${SWEEP[$SLURM_ARRAY_TASK_ID]}\"\n";
  s.block += fmt::format("NTASKS=$((SWEEP_NODES * {}))\n", tasks_per_node);
  s.block += "RUN_DIR=$RUN_DIR/n${SWEEP_NODES}-tp${SWEEP_TP}-pp${SWEEP_PP}\n";
  s.block += "TRAIN_ARGS+=(--parallel.tp \"$SWEEP_TP\" --parallel.pp \"$SWEEP_PP\")\n";
  if (o.cpu_ranks == 0)
    s.block += fmt::format("TRAIN_ARGS+=(--train.seq_len {} --train.micro_batch {} --train.grad_accum "
                           "\"$SWEEP_ACCUM\")\n", o.seq, o.micro_batch);
  s.srun_extra = "--nodes=\"$SWEEP_NODES\" --ntasks=\"$NTASKS\" ";
  s.mpirun_extra = "--host \"$(scontrol show hostnames | head -n \"$SWEEP_NODES\" | paste -sd,)\" ";
  return s;
}

std::string resource_lines(const Options& o) {
  std::string r = o.cpu_ranks > 0
                      ? std::string("#SBATCH --cpus-per-task=1\n"
                                    "#SBATCH --overcommit   # CPU test job: ranks may share cores")
                      : fmt::format("#SBATCH --gpus-per-node={}\n#SBATCH --exclusive", o.gpus_per_node);
  if (!o.partition.empty()) r += "\n#SBATCH --partition=" + o.partition;
  if (!o.account.empty()) r += "\n#SBATCH --account=" + o.account;
  return r;
}

// The script's first comment line; a sweep adds the per-node-count sbatch lines that avoid idle nodes.
std::string job_title(const Options& o, const std::vector<PlannedJob>& jobs, const std::string& model_stem,
                      int tasks_per_node) {
  const Layout& l = jobs[0].layout;
  if (!is_sweep(o, jobs))
    return fmt::format("Iris {} of {} on {} node(s) x {} {}: tp={} pp={} dp={}", o.task, model_stem, o.nodes,
                       tasks_per_node, o.cpu_ranks > 0 ? "CPU ranks" : o.gpu, l.tp, l.pp,
                       o.nodes * tasks_per_node / (l.tp * l.pp));
  std::string title = fmt::format("Iris {} of {}: scaling sweep, {} array tasks over node counts {}", o.task,
                                  model_stem, jobs.size(), o.sweep.empty() ? std::to_string(o.nodes) : o.sweep);
  size_t first = 0;
  for (size_t i = 1; i <= jobs.size(); ++i)
    if (i == jobs.size() || jobs[i].layout.nodes != jobs[first].layout.nodes) {
      title += fmt::format("\n# Without idle nodes: sbatch --nodes={} --array={}-{} {}", jobs[first].layout.nodes,
                           first, i - 1, fs::path(o.output).filename().string());
      first = i;
    }
  return title;
}

// The values of train.sbatch.in's @PLACEHOLDERS@.
std::map<std::string, std::string> template_values(const Options& o, const std::vector<PlannedJob>& jobs,
                                                   const fs::path& root, const std::string& title,
                                                   int tasks_per_node) {
  const bool cpu = o.cpu_ranks > 0, sweep = is_sweep(o, jobs);
  int max_nodes = 0;
  for (const PlannedJob& j : jobs) max_nodes = std::max(max_nodes, j.layout.nodes);
  const std::string iris_home = o.iris_home.empty() ? root.string() : o.iris_home;
  const std::string iris_train = !o.iris_home.empty() ? std::string("$IRIS_HOME/build/bin/iris-train")
                                     : script_path((fs::path(o.self).parent_path() / "iris-train").string(), root);
  const SweepLines s = sweep ? sweep_lines(o, jobs, tasks_per_node) : SweepLines{};
  return {
      {"TITLE", title},
      {"SCRIPT_NAME", fs::path(o.output).filename().string()},
      {"COMMAND", o.command},
      {"RANK_UNIT", cpu ? "CPU task (CPU backend test job)" : "GPU"},
      {"JOB_NAME", o.name},
      {"NODES", std::to_string(max_nodes)},
      {"TASKS_PER_NODE", std::to_string(tasks_per_node)},
      // CPU test jobs ask for --ntasks: Slurm refuses --ntasks-per-node above the node's CPUs even with
      // --overcommit, and a test machine may have fewer cores than ranks.
      {"TASKS_LINE", cpu ? fmt::format("#SBATCH --ntasks={}", o.cpu_ranks)
                         : fmt::format("#SBATCH --ntasks-per-node={}", tasks_per_node)},
      {"ARRAY_LINE", s.array_line},
      {"RESOURCE_LINES", resource_lines(o)},
      {"TIME", o.time},
      {"IRIS_HOME", shell_quoted_body(iris_home)},
      {"IRIS_TRAIN", shell_quoted_body(iris_train)},
      {"MODEL", shell_quoted_body(script_path(o.model, root))},
      {"DATA", shell_quoted_body(script_path(o.data, root))},
      {"TOKENIZER", shell_quoted_body(script_path(o.tokenizer, root))},
      {"RUN_CONFIG", shell_quoted_body(script_path(o.run_config, root))},
      {"INIT_FROM", shell_quoted_body(script_path(o.init_from, root))},
      {"RUN_DIR", shell_quoted_body(o.run_dir)},
      {"EXIT_REQUEUE", std::to_string(kExitCheckpointedRequeue)},
      {"EXIT_DIVERGED", std::to_string(kExitDiverged)},
      {"SIGNAL_LINE", o.signal_lead > 0 ? fmt::format("#SBATCH --signal=B:USR1@{}", o.signal_lead)
                                        : std::string("# (no --signal: iris-slurm --signal-lead 0)")},
      {"TRAIN_ARGS", join_args(train_args(o, jobs, sweep))},
      {"SWEEP_BLOCK", s.block},
      {"EXTRA_DATA_FILES", o.task_kind == Task::Sft ? "\"${DATA}_loss_mask.bin\" \"${DATA}_loss_mask.idx\"" : ""},
      {"SRUN_EXTRA", s.srun_extra},
      {"MPIRUN_EXTRA", s.mpirun_extra},
  };
}

// Writes the job script, executable, and says so.
void write_script(const std::string& path, const std::string& script, const std::string& title) {
  {
    std::ofstream out(path);
    IRIS_USER_CHECK(out.good(), "cannot write {}", path);
    out << script;
  }
  fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  fmt::print("wrote {}: {}\n", path, title.substr(0, title.find('\n')));
}

// --task generate: iris-generate over --data (a prompts JSONL) with the model of --init-from, one node,
// tensor parallel over the ranks. The job runs iris-generate on the CPU backend (--cpu-ranks N, tp = N).
int write_generate_job(Options& o, const LlamaConfig& config, const fs::path& root) {
  IRIS_USER_CHECK(o.cpu_ranks > 0, "--task generate writes a CPU job: give --cpu-ranks N (N = tensor-parallel ranks "
                  "on one node)");
  IRIS_USER_CHECK(!o.init_from.empty(), "--task generate needs --init-from (an HF directory or an Iris checkpoint)");
  IRIS_USER_CHECK(!o.data.empty(), "--task generate needs --data PROMPTS.jsonl");
  IRIS_USER_CHECK(o.nodes == 1 && o.sweep.empty(), "--task generate runs on one node (no --nodes, no --sweep)");
  check_file(o.data, "--data");
  check_file(o.tokenizer, "--tokenizer");
  check_file(o.init_from, "--init-from");
  validate_layout(config, o.cpu_ranks, 1);
  const std::string model_stem = fs::path(o.model).stem().string();
  if (o.name.empty()) o.name = "iris-generate-" + model_stem;
  if (o.run_dir.empty()) o.run_dir = "runs/" + o.name;
  std::string resources = "#SBATCH --cpus-per-task=1\n#SBATCH --overcommit";
  if (!o.partition.empty()) resources += "\n#SBATCH --partition=" + o.partition;
  if (!o.account.empty()) resources += "\n#SBATCH --account=" + o.account;
  const std::string title = fmt::format("Iris generate with {} on {} CPU ranks (tp={})", model_stem, o.cpu_ranks,
                                        o.cpu_ranks);
  const std::map<std::string, std::string> values = {
      {"TITLE", title}, {"SCRIPT_NAME", fs::path(o.output).filename().string()}, {"COMMAND", o.command},
      {"JOB_NAME", o.name}, {"NTASKS", std::to_string(o.cpu_ranks)}, {"RESOURCE_LINES", resources}, {"TIME", o.time},
      {"IRIS_HOME", shell_quoted_body(o.iris_home.empty() ? root.string() : o.iris_home)},
      {"IRIS_GENERATE", shell_quoted_body(script_path((fs::path(o.self).parent_path() / "iris-generate").string(), root))},
      {"INIT_FROM", shell_quoted_body(script_path(o.init_from, root))},
      {"DATA", shell_quoted_body(script_path(o.data, root))},
      {"TOKENIZER", shell_quoted_body(script_path(o.tokenizer, root))},
      {"RUN_DIR", shell_quoted_body(o.run_dir)}, {"GENERATE_ARGS", join_args(o.extra)}};
  const fs::path templates = o.templates.empty() ? root / "jobs/slurm" : fs::path(o.templates);
  write_script(o.output, fill_template(templates / "generate.sbatch.in", values), title);
  return kExitOk;
}

// --task eval: iris-eval (--eval-task mcq|ppl|text) over --data (the input JSONL; for ppl a token dataset
// PREFIX or a text file) with the model of --init-from, one node, on the CPU backend (--cpu-ranks N): the model
// over --layout TP,PP (default tp = N), the items over dp = N / (tp·pp). iris-eval flags through --train-arg.
int write_eval_job(Options& o, const LlamaConfig& config, const fs::path& root) {
  IRIS_USER_CHECK(o.cpu_ranks > 0, "--task eval writes a CPU job: give --cpu-ranks N (ranks on one node)");
  IRIS_USER_CHECK(!o.init_from.empty(), "--task eval needs --init-from (an HF directory or an Iris checkpoint)");
  IRIS_USER_CHECK(!o.data.empty(), "--task eval needs --data (the evaluation file; ppl: also a dataset PREFIX)");
  IRIS_USER_CHECK(o.nodes == 1 && o.sweep.empty(), "--task eval runs on one node (no --nodes, no --sweep)");
  IRIS_USER_CHECK(o.eval_task == "mcq" || o.eval_task == "ppl" || o.eval_task == "text",
                  "--eval-task must be mcq, ppl or text, got \"{}\"", o.eval_task);
  IRIS_USER_CHECK(o.eval_task != "mcq" || !o.eval_format.empty(),
                  "--eval-task mcq needs --eval-format medmcqa|pubmedqa|generic");
  IRIS_USER_CHECK(o.eval_task == "ppl" || is_shell_path(o.data) || fs::exists(o.data), "--data {} does not exist",
                  o.data);
  check_file(o.tokenizer, "--tokenizer");
  check_file(o.init_from, "--init-from");
  const auto [tp, pp] = o.layout == "auto" ? std::pair<int, int>{o.cpu_ranks, 1} : parse_layout(o.layout);
  IRIS_USER_CHECK(o.cpu_ranks % (tp * pp) == 0, "--cpu-ranks {} is not a multiple of tp x pp = {} x {}", o.cpu_ranks,
                  tp, pp);
  IRIS_USER_CHECK(o.eval_task != "text" || pp == 1, "--eval-task text generates at pp = 1; use --layout TP,1");
  validate_layout(config, tp, pp);
  const std::string model_stem = fs::path(o.model).stem().string();
  if (o.name.empty()) o.name = "iris-eval-" + o.eval_task + "-" + model_stem;
  if (o.run_dir.empty()) o.run_dir = "runs/" + o.name;
  std::string resources = "#SBATCH --cpus-per-task=1\n#SBATCH --overcommit";
  if (!o.partition.empty()) resources += "\n#SBATCH --partition=" + o.partition;
  if (!o.account.empty()) resources += "\n#SBATCH --account=" + o.account;
  const std::string title = fmt::format("Iris eval {} with {} on {} CPU ranks (tp={} pp={} dp={})", o.eval_task,
                                        model_stem, o.cpu_ranks, tp, pp, o.cpu_ranks / (tp * pp));
  std::vector<std::string> task_args;
  if (o.eval_task == "mcq") task_args = {"--format", o.eval_format};
  for (const auto& a : o.extra) task_args.push_back(a);
  const std::map<std::string, std::string> values = {
      {"TITLE", title}, {"SCRIPT_NAME", fs::path(o.output).filename().string()}, {"COMMAND", o.command},
      {"JOB_NAME", o.name}, {"NTASKS", std::to_string(o.cpu_ranks)}, {"RESOURCE_LINES", resources}, {"TIME", o.time},
      {"IRIS_HOME", shell_quoted_body(o.iris_home.empty() ? root.string() : o.iris_home)},
      {"IRIS_EVAL", shell_quoted_body(script_path((fs::path(o.self).parent_path() / "iris-eval").string(), root))},
      {"INIT_FROM", shell_quoted_body(script_path(o.init_from, root))}, {"EVAL_TASK", o.eval_task},
      {"DATA", shell_quoted_body(script_path(o.data, root))},
      {"TOKENIZER", shell_quoted_body(script_path(o.tokenizer, root))},
      {"RUN_DIR", shell_quoted_body(o.run_dir)}, {"TP", std::to_string(tp)}, {"PP", std::to_string(pp)},
      {"EVAL_ARGS", join_args(task_args)}};
  const fs::path templates = o.templates.empty() ? root / "jobs/slurm" : fs::path(o.templates);
  write_script(o.output, fill_template(templates / "eval.sbatch.in", values), title);
  return kExitOk;
}

int run(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) return kExitOk;
  check_options(o);
  const LlamaConfig config = LlamaConfig::load(o.model);
  const fs::path root = source_root();
  if (o.generate) return write_generate_job(o, config, root);
  if (o.eval) return write_eval_job(o, config, root);
  const std::vector<PlannedJob> jobs = plan_jobs(config, o, root);

  const std::string model_stem = fs::path(o.model).stem().string();
  if (o.name.empty()) o.name = fmt::format("iris-{}-{}{}", o.task, model_stem, o.sweep.empty() ? "" : "-sweep");
  if (o.run_dir.empty()) o.run_dir = "runs/" + o.name;
  const int tasks_per_node = o.cpu_ranks > 0 ? o.cpu_ranks / jobs[0].layout.nodes : o.gpus_per_node;
  const std::string title = job_title(o, jobs, model_stem, tasks_per_node);
  const fs::path templates = o.templates.empty() ? root / "jobs/slurm" : fs::path(o.templates);
  write_script(o.output, fill_template(templates / "train.sbatch.in", template_values(o, jobs, root, title, tasks_per_node)),
               title);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return iris::run_tool("iris-slurm", [&] { return run(argc, argv); });
}
