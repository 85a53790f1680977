// iris-bench: Iris's training step against PyTorch's on one device, in one run (bench_driver.h).
//   iris-bench --models llama3.2-1b,llama2-7b --seq 4096 --micro-batch 1 --grad-accum 8 --steps 10
//              --warmup-steps 3 --device cuda --recompute auto --python python3 --out runs/iris-bench
// Prints a table per model and writes OUT/results.json; the logs of every child run stay in OUT.
// Exit status: 0 when every requested side ran (targets met or not), 1 when a side failed, 2 on bad options.
#include <boost/program_options.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "bench/bench_driver.h"
#include "src/core/check.h"
#include "src/model/llama_config.h"
#include "src/plan/plan.h"

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
       "Iris train.recompute: none | selective | full | auto (none, then selective, then full on out-of-memory)")
      ("torch-checkpointing", po::value(&opt.torch_checkpointing)->default_value(opt.torch_checkpointing),
       "PyTorch gradient checkpointing: off | on | auto (on after an out-of-memory)")
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
  IRIS_USER_CHECK(opt.device == "cuda" || opt.device == "cpu", "--device must be cuda or cpu, got \"{}\"", opt.device);
  IRIS_USER_CHECK(opt.recompute == "none" || opt.recompute == "selective" || opt.recompute == "full" ||
                      opt.recompute == "auto",
                  "--recompute must be none, selective, full or auto, got \"{}\"", opt.recompute);
  IRIS_USER_CHECK(opt.torch_checkpointing == "off" || opt.torch_checkpointing == "on" || opt.torch_checkpointing == "auto",
                  "--torch-checkpointing must be off, on or auto, got \"{}\"", opt.torch_checkpointing);
  IRIS_USER_CHECK(opt.torch_compile == "auto" || opt.torch_compile == "off", "--torch-compile must be auto or off");
  IRIS_USER_CHECK(opt.seq > 0 && opt.micro_batch > 0 && opt.grad_accum > 0 && opt.steps > 0 && opt.warmup_steps >= 0,
                  "--seq, --micro-batch, --grad-accum and --steps must be positive, --warmup-steps not negative");
  if (opt.device == "cpu" && opt.threads == 0) {
    const char* omp = std::getenv("OMP_NUM_THREADS");
    opt.threads = omp && std::atoi(omp) > 0 ? std::atoi(omp) : static_cast<int>(std::thread::hardware_concurrency());
  }
  fs::create_directories(opt.out);

  std::vector<ModelResult> results;
  bool all_ok = true;
  for (const auto& name : opt.models) {
    ModelResult m;
    m.name = name;
    m.config_path = materialize_model_config(name, opt.out);
    const LlamaConfig config = LlamaConfig::load(m.config_path);
    m.parameters = config.num_parameters();
    m.flops_per_token = plan::flops_per_token(config, opt.seq);
    if (opt.run_iris) {
      const long long tokens = 1LL * (opt.steps + opt.warmup_steps) * opt.micro_batch * opt.grad_accum * (opt.seq + 1);
      const std::string prefix = fs::absolute(fs::path(opt.out) / "data" / fmt::format("random_v{}", config.vocab_size));
      write_random_dataset(prefix, config.vocab_size, std::max(tokens, 64LL * (opt.seq + 1)));
      m.iris = run_iris(opt, name, m.config_path, prefix);
      all_ok = all_ok && m.iris.ok;
    }
    if (opt.run_torch) {
      m.torch = run_torch(opt, name, m.config_path);
      all_ok = all_ok && m.torch.ok;
    }
    results.push_back(std::move(m));
    // After every model, so a run cut short by a time limit still leaves the models it finished.
    report(opt, results);
  }
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const iris::UserError& e) {
    std::cerr << "iris-bench: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "iris-bench: internal error: " << e.what() << "\n";
    return 1;
  }
}
