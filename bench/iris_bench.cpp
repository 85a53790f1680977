// iris-bench: Iris's training step against PyTorch's on one device, in one run (bench_driver.h).
//   iris-bench --models llama3.2-1b,llama2-7b --seq 4096 --micro-batch 1 --grad-accum 8 --steps 10
//              --warmup-steps 3 --device cuda --gpu h100-80gb --recompute auto --python python3 --out runs/iris-bench
// The planner decides first whether the Iris side fits (and which recompute mode, with --recompute auto);
// a model that does not fit is refused at once. After each side the table is printed and OUT/results.json
// rewritten; the logs of every child run stay in OUT. Exit status: 0 when every requested side ran with
// valid losses (targets met or not), 1 when a side failed or was INVALID, 2 on bad options, 3 when the
// planner refused a model (and nothing failed).
#include <boost/program_options.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "bench/bench_driver.h"
#include "src/core/check.h"
#include "src/model/llama.h"
#include "src/model/llama_config.h"
#include "src/plan/plan.h"
#include "src/core/tool_main.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace iris;
using namespace iris::bench;

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

// Plans, then runs the asked sides of one model, reporting after each; false when a side failed or was
// INVALID. A model the planner refuses runs nothing (its result says why).
bool run_model(const Options& opt, const std::string& name, std::vector<ModelResult>& results) {
  results.emplace_back();
  ModelResult& m = results.back();
  m.name = name;
  m.config_path = materialize_model_config(name, opt.out);
  LlamaConfig config = LlamaConfig::load(m.config_path);
  m.layers = m.model_layers = config.num_hidden_layers;
  m.parameters = config.num_parameters();
  m.flops_per_token = plan::flops_per_token(config, opt.seq);
  if (opt.run_iris) {
    m.fit = plan_fit(opt, config);
  } else {  // the planner models Iris's memory, not PyTorch's
    m.fit = {true, opt.recompute, config.num_hidden_layers, 0, 0, "not asked: --torch-only (the planner models Iris)"};
  }
  std::printf("[%s] [plan] %s\n", name.c_str(), m.fit.why.c_str());
  std::fflush(stdout);
  if (!m.fit.fits) {
    m.iris.error = m.torch.error = "REFUSED: " + m.fit.why;
    m.ran_iris = opt.run_iris, m.ran_torch = opt.run_torch;
    report(opt, results);
    return true;
  }
  if (m.fit.layers < config.num_hidden_layers) {  // --fit-layers: both sides run the shallower model
    m.config_path = write_layers_config(config, m.fit.layers,
                                        (fs::path(m.config_path).parent_path() /
                                         fmt::format("{}-L{}.json", model_stem(name), m.fit.layers)).string());
    config = LlamaConfig::load(m.config_path);
  }
  m.layers = config.num_hidden_layers;
  m.parameters = config.num_parameters();
  m.flops_per_token = plan::flops_per_token(config, opt.seq);
  if (opt.plan_only) {
    report(opt, results);
    return true;
  }
  bool ok = true;
  if (opt.run_iris) {
    const long long tokens = 1LL * (opt.steps + opt.warmup_steps) * opt.micro_batch * opt.grad_accum * (opt.seq + 1);
    const std::string prefix = fs::absolute(fs::path(opt.out) / "data" / fmt::format("skewed_v{}", config.vocab_size));
    write_random_dataset(prefix, config.vocab_size, std::max(tokens, 64LL * (opt.seq + 1)));
    m.iris = run_iris(opt, name, m.config_path, prefix, m.fit.recompute);
    if (m.iris.ok) m.iris.validity = loss_verdict(m.iris.losses, config, opt.warmup_steps, /*must_fall=*/true);
    m.ran_iris = true;
    ok = m.iris.valid();
    report(opt, results);  // now, so a run cut short before the other side still leaves this one
  }
  if (opt.run_torch) {
    m.torch = run_torch(opt, name, m.config_path);
    if (m.torch.ok) m.torch.validity = loss_verdict(m.torch.losses, config, opt.warmup_steps, /*must_fall=*/true);
    m.ran_torch = true;
    ok = ok && m.torch.valid();
    report(opt, results);
  }
  return ok;
}

int run(int argc, char** argv) {
  Options opt;
  std::string models = "llama3.2-1b,llama2-7b";
  po::options_description desc("iris-bench options");
  desc.add_options()("help", "print this help")
      ("models", po::value(&models)->default_value(models), "comma-separated configs/models names (built in) or config.json paths")
      ("seq", po::value(&opt.seq)->default_value(opt.seq), "sequence length")
      ("micro-batch", po::value(&opt.micro_batch)->default_value(opt.micro_batch), "samples per micro-batch")
      ("grad-accum", po::value(&opt.grad_accum)->default_value(opt.grad_accum), "micro-batches per optimizer step")
      ("steps", po::value(&opt.steps)->default_value(opt.steps), "timed optimizer steps")
      ("warmup-steps", po::value(&opt.warmup_steps)->default_value(opt.warmup_steps), "steps first, left out of the averages")
      ("device", po::value(&opt.device)->default_value(opt.device), "cuda | cpu")
      ("recompute", po::value(&opt.recompute)->default_value(opt.recompute),
       "Iris train.recompute: none | selective | full | auto (the least the planner says fits)")
      ("gpu", po::value(&opt.gpu), "cuda: the configs/hardware/gpus.json entry to plan for (e.g. h100-80gb, h200-141gb)")
      ("hardware", po::value(&opt.hardware), "a gpus.json to read instead of the one built in")
      ("memory-gib", po::value(&opt.memory_gib)->default_value(0), "cpu: the planner's memory budget (0: MemAvailable)")
      ("fit-layers", po::bool_switch(&opt.fit_layers), "run as many of the model's layers as the planner fits, when all do not")
      ("plan-only", po::bool_switch(&opt.plan_only), "print the planner's answer and run nothing")
      ("iris-arg", po::value(&opt.iris_args)->composing(), "an extra iris-train setting KEY=VALUE (repeatable)")
      ("torch-checkpointing", po::value(&opt.torch_checkpointing)->default_value(opt.torch_checkpointing),
       "PyTorch gradient checkpointing: off | on (no retry after an out-of-memory)")
      ("torch-compile", po::value(&opt.torch_compile)->default_value(opt.torch_compile), "auto (where it works) | off")
      ("iris-only", po::bool_switch(), "run only the Iris side")
      ("torch-only", po::bool_switch(), "run only the PyTorch side")
      ("python", po::value(&opt.python)->default_value(opt.python), "Python with torch and transformers")
      ("out", po::value(&opt.out)->default_value(opt.out), "folder for logs, the dataset and results.json")
      ("iris-train", po::value(&opt.iris_train), "iris-train to run (default: the one beside iris-bench)")
      ("torch-script", po::value(&opt.torch_script), "the PyTorch step script (default: the copy built into iris-bench)")
      ("peak-tflops", po::value(&opt.peak_tflops)->default_value(0), "device peak TFLOP/s for both MFUs (0: Iris's own)")
      ("threads", po::value(&opt.threads)->default_value(0), "cpu: threads for both sides (0: OMP_NUM_THREADS, else all cores)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "iris-bench: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  opt.models = split_commas(models);
  opt.run_iris = !vm["torch-only"].as<bool>();
  opt.run_torch = !vm["iris-only"].as<bool>();
  IRIS_USER_CHECK(opt.run_iris || opt.run_torch, "--iris-only and --torch-only together leave nothing to run");
  IRIS_USER_CHECK(!opt.models.empty(), "--models is empty");
  opt.device_kind = parse_device(opt.device, "--device");
  if (opt.recompute != "auto") parse_recompute(opt.recompute, "--recompute (or auto)");  // refuses a bad spelling
  IRIS_USER_CHECK(opt.torch_checkpointing == "off" || opt.torch_checkpointing == "on",
                  "--torch-checkpointing must be off or on, got \"{}\"", opt.torch_checkpointing);
  IRIS_USER_CHECK(opt.torch_compile == "auto" || opt.torch_compile == "off", "--torch-compile must be auto or off");
  IRIS_USER_CHECK(opt.seq > 0 && opt.micro_batch > 0 && opt.grad_accum > 0 && opt.steps > 0 && opt.warmup_steps >= 0,
                  "--seq, --micro-batch, --grad-accum and --steps must be positive, --warmup-steps not negative");
  if (opt.device_kind == Device::Cpu && opt.threads == 0) {
    const char* omp = std::getenv("OMP_NUM_THREADS");
    opt.threads = omp && std::atoi(omp) > 0 ? std::atoi(omp) : static_cast<int>(std::thread::hardware_concurrency());
  }
  fs::create_directories(opt.out);

  std::vector<ModelResult> results;
  bool all_ok = true, refused = false;
  for (const auto& name : opt.models) {
    if (!run_model(opt, name, results)) all_ok = false;
    refused = refused || !results.back().fit.fits;
  }
  return !all_ok ? 1 : refused ? 3 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return iris::run_tool("iris-bench", [&] { return run(argc, argv); });
}
