// iris-slurm: writes an sbatch script for a training job from jobs/slurm/train.sbatch.in.
//   iris-slurm --task pretrain|sft --model configs/models/llama2-7b.json --nodes 2 --gpus-per-node 8
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
#include "src/train/exit_codes.h"

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
  int nodes = 1, gpus_per_node = 8, cpu_ranks = 0, seq = 4096, micro_batch = 1, global_batch = 0;
  int signal_lead = 300;  // seconds before the time limit Slurm sends USR1 (0: no signal)
  std::vector<std::string> extra;
};

// Fits the planner's Job to the options and checks (tp, pp) on nodes x gpus; returns grad_accum.
int check_gpu_layout(const LlamaConfig& config, const plan::GpuSpec& gpu, const Options& o, const Layout& l) {
  const int gpus = l.nodes * o.gpus_per_node;
  IRIS_USER_CHECK(gpus % (l.tp * l.pp) == 0, "{} node(s) x {} GPUs = {} GPUs cannot hold layout tp={} pp={}: the GPU "
                  "count must be a multiple of tp x pp = {}", l.nodes, o.gpus_per_node, gpus, l.tp, l.pp, l.tp * l.pp);
  IRIS_USER_CHECK(l.tp <= o.gpus_per_node, "tp={} is larger than --gpus-per-node {}: tensor parallelism must stay "
                  "inside a node", l.tp, o.gpus_per_node);
  plan::Job job;
  job.gpus = gpus;
  job.gpus_per_node = o.gpus_per_node;
  job.seq = o.seq;
  job.micro_batch = o.micro_batch;
  job.recompute = o.recompute_mode;
  job.bf16_grads = o.grad_dtype == "bf16";
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
  plan::Job job;
  job.gpus = nodes * o.gpus_per_node;
  job.gpus_per_node = o.gpus_per_node;
  job.seq = o.seq;
  job.micro_batch = o.micro_batch;
  job.recompute = o.recompute_mode;
  job.bf16_grads = o.grad_dtype == "bf16";
  job.global_batch = o.global_batch > 0 ? o.global_batch : job.gpus * o.micro_batch;
  for (const plan::LayoutPlan& p : plan::plan_all(config, gpu, job))
    if (p.refusal.empty() && p.fits && p.tp <= o.gpus_per_node) return {nodes, p.tp, p.pp};
  throw UserError(fmt::format("{} does not fit on {} node(s) x {} {} under any layout (iris-plan --model {} --gpus {} "
                              "--gpu {} --global-batch {} --recompute {} shows why); use more nodes or --recompute "
                              "selective|full", config.source, nodes, o.gpus_per_node, gpu.name, config.source, job.gpus,
                              gpu.name, job.global_batch, o.recompute));
}

void check_file(const std::string& path, const std::string& what) {
  if (path.empty() || is_shell_path(path)) return;
  IRIS_USER_CHECK(fs::exists(path), "{} {} does not exist", what, path);
}

void check_data(const Options& o) {
  IRIS_USER_CHECK(!o.data.empty(), "--data PREFIX is required (the tokenized dataset PREFIX.bin/.idx)");
  if (is_shell_path(o.data)) return;  // checked by the script at run time
  std::vector<std::string> files = {o.data + ".bin", o.data + ".idx"};
  if (o.task == "sft") files.insert(files.end(), {o.data + "_loss_mask.bin", o.data + "_loss_mask.idx"});
  for (const auto& f : files)
    IRIS_USER_CHECK(fs::exists(f), "data file {} does not exist (--data {}{}); tokenize with iris-tokenize first",
                    f, o.data, o.task == "sft" ? ", an SFT dataset needs tokens and loss mask" : "");
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

// --task generate: iris-generate over --data (a prompts JSONL) with the model of --init-from, one node,
// tensor parallel over the ranks. iris-generate runs on the CPU backend so far, so the job is a CPU job
// (--cpu-ranks N, tp = N); GPU jobs are refused until iris-generate has --device cuda.
int write_generate_job(Options& o, const po::variables_map& vm, const LlamaConfig& config, int argc, char** argv) {
  IRIS_USER_CHECK(o.cpu_ranks > 0, "--task generate writes a CPU job so far (iris-generate has no --device cuda yet): "
                  "give --cpu-ranks N (N = tensor-parallel ranks on one node)");
  IRIS_USER_CHECK(!o.init_from.empty(), "--task generate needs --init-from (an HF directory or an Iris checkpoint)");
  IRIS_USER_CHECK(!o.data.empty(), "--task generate needs --data PROMPTS.jsonl");
  IRIS_USER_CHECK(o.nodes == 1 && !vm.count("sweep"), "--task generate runs on one node (no --nodes, no --sweep)");
  check_file(o.data, "--data");
  check_file(o.tokenizer, "--tokenizer");
  check_file(o.init_from, "--init-from");
  validate_layout(config, o.cpu_ranks, 1);
  const fs::path root = source_root(), output = vm["output"].as<std::string>();
  const std::string model_stem = fs::path(vm["model"].as<std::string>()).stem().string();
  if (o.name.empty()) o.name = "iris-generate-" + model_stem;
  if (o.run_dir.empty()) o.run_dir = "runs/" + o.name;
  std::string command = "iris-slurm", resources = "#SBATCH --cpus-per-task=1\n#SBATCH --overcommit";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  if (!o.partition.empty()) resources += "\n#SBATCH --partition=" + o.partition;
  if (!o.account.empty()) resources += "\n#SBATCH --account=" + o.account;
  const std::string title = fmt::format("Iris generate with {} on {} CPU ranks (tp={})", model_stem, o.cpu_ranks,
                                        o.cpu_ranks);
  const std::map<std::string, std::string> values = {
      {"TITLE", title}, {"SCRIPT_NAME", output.filename().string()}, {"COMMAND", command}, {"JOB_NAME", o.name},
      {"NTASKS", std::to_string(o.cpu_ranks)}, {"RESOURCE_LINES", resources}, {"TIME", o.time},
      {"IRIS_HOME", shell_quoted_body(vm.count("iris-home") ? vm["iris-home"].as<std::string>() : root.string())},
      {"IRIS_GENERATE", shell_quoted_body(script_path((fs::path(argv[0]).parent_path() / "iris-generate").string(), root))},
      {"INIT_FROM", shell_quoted_body(script_path(o.init_from, root))},
      {"DATA", shell_quoted_body(script_path(o.data, root))},
      {"TOKENIZER", shell_quoted_body(script_path(o.tokenizer, root))},
      {"RUN_DIR", shell_quoted_body(o.run_dir)}, {"GENERATE_ARGS", join_args(o.extra)}};
  const fs::path templates = vm.count("templates") ? fs::path(vm["templates"].as<std::string>()) : root / "jobs/slurm";
  const std::string script = fill_template(templates / "generate.sbatch.in", values);
  {
    std::ofstream out(output);
    IRIS_USER_CHECK(out.good(), "cannot write {}", output.string());
    out << script;
  }
  fs::permissions(output, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  fmt::print("wrote {}: {}\n", output.string(), title);
  return 0;
}

int run(int argc, char** argv) {
  Options o;
  po::options_description opts("iris-slurm options");
  opts.add_options()("help", "show this help")
      ("task", po::value(&o.task)->default_value("pretrain"), "pretrain | sft | generate")
      ("model", po::value<std::string>(), "HF config.json of the model (e.g. configs/models/llama2-7b.json)")
      ("nodes", po::value(&o.nodes)->default_value(1), "nodes")
      ("gpus-per-node", po::value(&o.gpus_per_node)->default_value(8), "GPUs per node (one rank per GPU)")
      ("gpu", po::value(&o.gpu)->default_value(kDefaultGpu), "GPU type for the planner (configs/hardware/gpus.json)")
      ("layout", po::value<std::string>()->default_value("auto"), "auto (the planner's best) or TP,PP")
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
      ("sweep", po::value<std::string>(), "job array over these node counts, e.g. 1,2,4")
      ("sweep-layouts", po::value<std::string>(), "layouts of the sweep, e.g. \"1,1 2,2\" (default: the planner's "
                                                  "best for each node count)")
      ("cpu-ranks", po::value(&o.cpu_ranks)->default_value(0), "CPU-backend test job: this many ranks in all, no "
                                                               "GPUs requested, tasks may share cores (--overcommit)")
      ("iris-home", po::value<std::string>(), "the Iris checkout as the script should name it (default: this one)")
      ("templates", po::value<std::string>(), "template directory (default jobs/slurm of the checkout)")
      ("hardware", po::value<std::string>(), "GPU table (default configs/hardware/gpus.json)")
      ("output", po::value<std::string>(), "the sbatch script to write")
      ("train-arg", po::value(&o.extra)->composing(), "extra iris-train flag (repeatable), e.g. --train-arg=--train.steps=1000");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "iris-slurm: " << e.what() << "\n" << opts;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  IRIS_USER_CHECK(vm.count("model"), "--model is required (e.g. configs/models/llama2-7b.json)");
  IRIS_USER_CHECK(vm.count("output"), "--output FILE is required (the sbatch script to write)");
  IRIS_USER_CHECK(o.signal_lead >= 0, "--signal-lead must not be negative, got {}", o.signal_lead);
  IRIS_USER_CHECK(o.task == "pretrain" || o.task == "sft" || o.task == "generate",
                  "--task must be pretrain, sft or generate, got \"{}\"", o.task);
  IRIS_USER_CHECK(o.nodes >= 1 && o.gpus_per_node >= 1 && o.seq >= 1 && o.micro_batch >= 1 && o.cpu_ranks >= 0,
                  "--nodes, --gpus-per-node, --seq and --micro-batch must be positive");
  IRIS_USER_CHECK(std::regex_match(o.time, std::regex(R"((\d+-)?\d{1,2}:\d{2}:\d{2})")),
                  "--time must be D-HH:MM:SS or HH:MM:SS, got \"{}\"", o.time);
  const std::string model_arg = vm["model"].as<std::string>();
  const LlamaConfig config = LlamaConfig::load(model_arg);
  o.recompute_mode = parse_recompute(o.recompute, "--recompute");
  IRIS_USER_CHECK(o.comm == "nccl" || o.comm == "mpi", "--comm must be nccl or mpi, got \"{}\"", o.comm);
  IRIS_USER_CHECK(o.grad_dtype == "fp32" || o.grad_dtype == "bf16", "--grad-dtype must be fp32 or bf16, got \"{}\"",
                  o.grad_dtype);
  IRIS_USER_CHECK(o.grad_dtype == "fp32" || o.cpu_ranks == 0,
                  "--grad-dtype bf16 is for GPU jobs (train.grad_dtype=bf16 needs train.device=cuda); drop it with "
                  "--cpu-ranks");
  if (o.task == "generate") return write_generate_job(o, vm, config, argc, argv);
  check_data(o);
  check_file(o.tokenizer, "--tokenizer");
  check_file(o.run_config, "--run-config");
  check_file(o.init_from, "--init-from");

  const fs::path root = source_root();
  const bool cpu = o.cpu_ranks > 0;
  const std::string layout_arg = vm["layout"].as<std::string>();
  std::vector<int> node_counts = vm.count("sweep") ? parse_int_list(vm["sweep"].as<std::string>(), "--sweep")
                                                   : std::vector<int>{o.nodes};
  std::vector<Layout> layouts;
  std::vector<int> grad_accum;
  for (int nodes : node_counts) {
    std::vector<std::pair<int, int>> wanted;
    if (vm.count("sweep-layouts")) {
      std::stringstream in(vm["sweep-layouts"].as<std::string>());
      for (std::string item; in >> item;) wanted.push_back(parse_layout(item));
    } else if (layout_arg != "auto") {
      wanted.push_back(parse_layout(layout_arg));
    }
    if (cpu) {
      IRIS_USER_CHECK(o.cpu_ranks % nodes == 0, "--cpu-ranks {} cannot be spread evenly over {} node(s)", o.cpu_ranks,
                      nodes);
      if (wanted.empty()) wanted.push_back({1, 1});  // documented CPU default: pure data parallel
      for (auto [tp, pp] : wanted) {
        IRIS_USER_CHECK(o.cpu_ranks % (tp * pp) == 0, "--cpu-ranks {} cannot hold layout tp={} pp={}: the rank count "
                        "must be a multiple of tp x pp = {}", o.cpu_ranks, tp, pp, tp * pp);
        validate_layout(config, tp, pp);
        layouts.push_back({nodes, tp, pp});
        grad_accum.push_back(0);  // the run config's
      }
      continue;
    }
    const fs::path hardware = vm.count("hardware") ? fs::path(vm["hardware"].as<std::string>())
                                                   : root / "configs/hardware/gpus.json";
    const plan::GpuSpec gpu = plan::find_gpu(hardware, o.gpu);
    if (wanted.empty()) {
      layouts.push_back(auto_layout(config, gpu, o, nodes));
    } else {
      for (auto [tp, pp] : wanted) layouts.push_back({nodes, tp, pp});
    }
    for (size_t i = grad_accum.size(); i < layouts.size(); ++i)
      grad_accum.push_back(check_gpu_layout(config, gpu, o, layouts[i]));
  }

  const std::string model_stem = fs::path(model_arg).stem().string();
  if (o.name.empty()) o.name = fmt::format("iris-{}-{}{}", o.task, model_stem, vm.count("sweep") ? "-sweep" : "");
  if (o.run_dir.empty()) o.run_dir = "runs/" + o.name;
  const fs::path output = vm["output"].as<std::string>();
  const std::string iris_home = vm.count("iris-home") ? vm["iris-home"].as<std::string>() : root.string();
  const std::string iris_train = vm.count("iris-home") ? "$IRIS_HOME/build/bin/iris-train"
                                                       : script_path((fs::path(argv[0]).parent_path() / "iris-train")
                                                                         .string(), root);
  const int tasks_per_node = cpu ? o.cpu_ranks / layouts[0].nodes : o.gpus_per_node;
  auto layout_args = [&](const Layout& l, int accum) {
    std::vector<std::string> a = {"--parallel.tp", std::to_string(l.tp), "--parallel.pp", std::to_string(l.pp)};
    if (!cpu) {
      for (const std::string& s : {std::string("--train.seq_len"), std::to_string(o.seq), std::string("--train.micro_batch"),
                                   std::to_string(o.micro_batch), std::string("--train.grad_accum"), std::to_string(accum)})
        a.push_back(s);
    }
    return a;
  };

  std::vector<std::string> train_args;
  if (o.task == "sft") train_args.push_back("--train.task=sft");
  if (!cpu)  // one rank per GPU
    for (const std::string& a : {"--train.device", "cuda", "--parallel.comm", o.comm.c_str()}) train_args.push_back(a);
  if (o.recompute != "none")
    for (const std::string& a : {"--train.recompute", o.recompute.c_str()}) train_args.push_back(a);
  if (o.grad_dtype != "fp32")
    for (const std::string& a : {"--train.grad_dtype", o.grad_dtype.c_str()}) train_args.push_back(a);
  std::string sweep_block, array_line, srun_extra, mpirun_extra;
  int max_nodes = 0;
  for (const Layout& l : layouts) max_nodes = std::max(max_nodes, l.nodes);
  if (layouts.size() > 1 || vm.count("sweep")) {
    // One array task per (nodes, layout); each runs on the first `nodes` nodes of the allocation and
    // writes to its own RUN_DIR. Submit per node count to avoid idle nodes (see the header lines).
    array_line = fmt::format("#SBATCH --array=0-{}\n", layouts.size() - 1);
    sweep_block = "# The sweep: one line per array task, \"nodes tp pp grad_accum\".\nSWEEP=(";
    for (size_t i = 0; i < layouts.size(); ++i)
      sweep_block += fmt::format("{}\"{} {} {} {}\"", i ? " " : "", layouts[i].nodes, layouts[i].tp, layouts[i].pp,
                                 grad_accum[i]);
    sweep_block += ")\nread -r SWEEP_NODES SWEEP_TP SWEEP_PP SWEEP_ACCUM <<<\"${SWEEP[$SLURM_ARRAY_TASK_ID]}\"\n";
    sweep_block += fmt::format("NTASKS=$((SWEEP_NODES * {}))\n", tasks_per_node);
    sweep_block += "RUN_DIR=$RUN_DIR/n${SWEEP_NODES}-tp${SWEEP_TP}-pp${SWEEP_PP}\n";
    sweep_block += "TRAIN_ARGS+=(--parallel.tp \"$SWEEP_TP\" --parallel.pp \"$SWEEP_PP\")\n";
    if (!cpu)
      sweep_block += fmt::format("TRAIN_ARGS+=(--train.seq_len {} --train.micro_batch {} --train.grad_accum "
                                 "\"$SWEEP_ACCUM\")\n", o.seq, o.micro_batch);
    srun_extra = "--nodes=\"$SWEEP_NODES\" --ntasks=\"$NTASKS\" ";
    mpirun_extra = "--host \"$(scontrol show hostnames | head -n \"$SWEEP_NODES\" | paste -sd,)\" ";
  } else {
    for (const auto& a : layout_args(layouts[0], grad_accum[0])) train_args.push_back(a);
  }
  for (const auto& a : o.extra) train_args.push_back(a);

  std::string resources;
  if (cpu) {
    resources = "#SBATCH --cpus-per-task=1\n#SBATCH --overcommit   # CPU test job: ranks may share cores";
  } else {
    resources = fmt::format("#SBATCH --gpus-per-node={}\n#SBATCH --exclusive", o.gpus_per_node);
  }
  if (!o.partition.empty()) resources += "\n#SBATCH --partition=" + o.partition;
  if (!o.account.empty()) resources += "\n#SBATCH --account=" + o.account;

  std::string command = "iris-slurm";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::string title;
  if (layouts.size() == 1 && !vm.count("sweep")) {
    title = fmt::format("Iris {} of {} on {} node(s) x {} {}: tp={} pp={} dp={}", o.task, model_stem, o.nodes,
                        tasks_per_node, cpu ? "CPU ranks" : o.gpu, layouts[0].tp, layouts[0].pp,
                        o.nodes * tasks_per_node / (layouts[0].tp * layouts[0].pp));
  } else {
    title = fmt::format("Iris {} of {}: scaling sweep, {} array tasks over node counts {}", o.task, model_stem,
                        layouts.size(), vm["sweep"].as<std::string>());
    int first = 0;
    for (size_t i = 1; i <= layouts.size(); ++i)
      if (i == layouts.size() || layouts[i].nodes != layouts[first].nodes) {
        title += fmt::format("\n# Without idle nodes: sbatch --nodes={} --array={}-{} {}", layouts[first].nodes, first,
                             i - 1, output.filename().string());
        first = static_cast<int>(i);
      }
  }
  std::string extra_data;
  if (o.task == "sft") extra_data = "\"${DATA}_loss_mask.bin\" \"${DATA}_loss_mask.idx\"";

  const std::map<std::string, std::string> values = {
      {"TITLE", title},
      {"SCRIPT_NAME", output.filename().string()},
      {"COMMAND", command},
      {"RANK_UNIT", cpu ? "CPU task (CPU backend test job)" : "GPU"},
      {"JOB_NAME", o.name},
      {"NODES", std::to_string(max_nodes)},
      {"TASKS_PER_NODE", std::to_string(tasks_per_node)},
      // CPU test jobs ask for --ntasks: Slurm refuses --ntasks-per-node above the node's CPUs even with
      // --overcommit, and a test machine may have fewer cores than ranks.
      {"TASKS_LINE", cpu ? fmt::format("#SBATCH --ntasks={}", o.cpu_ranks)
                         : fmt::format("#SBATCH --ntasks-per-node={}", tasks_per_node)},
      {"ARRAY_LINE", array_line},
      {"RESOURCE_LINES", resources},
      {"TIME", o.time},
      {"IRIS_HOME", shell_quoted_body(iris_home)},
      {"IRIS_TRAIN", shell_quoted_body(iris_train)},
      {"MODEL", shell_quoted_body(script_path(model_arg, root))},
      {"DATA", shell_quoted_body(script_path(o.data, root))},
      {"TOKENIZER", shell_quoted_body(script_path(o.tokenizer, root))},
      {"RUN_CONFIG", shell_quoted_body(script_path(o.run_config, root))},
      {"INIT_FROM", shell_quoted_body(script_path(o.init_from, root))},
      {"RUN_DIR", shell_quoted_body(o.run_dir)},
      {"EXIT_REQUEUE", std::to_string(kExitCheckpointedRequeue)},
      {"SIGNAL_LINE", o.signal_lead > 0 ? fmt::format("#SBATCH --signal=B:USR1@{}", o.signal_lead)
                                        : std::string("# (no --signal: iris-slurm --signal-lead 0)")},
      {"TRAIN_ARGS", join_args(train_args)},
      {"SWEEP_BLOCK", sweep_block},
      {"EXTRA_DATA_FILES", extra_data},
      {"SRUN_EXTRA", srun_extra},
      {"MPIRUN_EXTRA", mpirun_extra},
  };
  const fs::path templates = vm.count("templates") ? fs::path(vm["templates"].as<std::string>()) : root / "jobs/slurm";
  const std::string script = fill_template(templates / "train.sbatch.in", values);
  {
    std::ofstream out(output);
    IRIS_USER_CHECK(out.good(), "cannot write {}", output.string());
    out << script;
  }
  fs::permissions(output, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  fmt::print("wrote {}: {}\n", output.string(), title.substr(0, title.find('\n')));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const iris::UserError& e) {
    std::cerr << "iris-slurm: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "iris-slurm: internal error: " << e.what() << "\n";
    return 1;
  }
}
