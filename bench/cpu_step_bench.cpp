// iris-cpu-step-bench: times full training steps (forward, backward, AdamW) of one model on the CPU backend
// with random tokens and prints tokens/s. No data files needed; one rank.
//   iris-cpu-step-bench --model configs/models/bench-10m.json --seq 256 --batch 8 --steps 10 --warmup 2
#include <mpi.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <omp.h>

#include "src/core/rng.h"
#include "src/model/llama.h"
#include "src/train/optimizer.h"
#include "src/core/tool_main.h"

namespace po = boost::program_options;
using namespace iris;

int run(int argc, char** argv) {
  std::string model_path = "configs/models/bench-10m.json";
  int T = 256, B = 8, steps = 10, warmup = 2;
  po::options_description desc("iris-cpu-step-bench options");
  desc.add_options()("help", "print this help")("model", po::value(&model_path)->default_value(model_path), "HF config.json")(
      "seq", po::value(&T)->default_value(T), "sequence length")("batch", po::value(&B)->default_value(B), "batch size")(
      "steps", po::value(&steps)->default_value(steps), "timed steps")("warmup", po::value(&warmup)->default_value(warmup),
                                                                       "untimed steps first");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::printf("%s\n", [&] { std::ostringstream s; s << desc; return s.str(); }().c_str());
    return 0;
  }
  const LlamaConfig config = LlamaConfig::load(model_path);
  const Topology topo = Topology::make(1, 0, 1, 1);
  const StageLayers layers = stage_layers(config.num_hidden_layers, 1, 0);
  const ParamTable table = ParamTable::build(config, topo, layers);
  std::vector<float> params(table.total_numel()), grads(table.total_numel());
  table.initialize(params.data(), 1);
  LlamaStage stage(config, topo, table, layers, B, T, nullptr);
  auto acts = stage.make_activations();
  AdamW adam(table, AdamWConfig{}, 0, table.total_numel());
  const int N = B * T;
  std::vector<int32_t> tokens(N), targets(N);
  for (int i = 0; i < N; ++i) {
    tokens[i] = static_cast<int32_t>(random_u64(5, 0, i) % config.vocab_size);
    targets[i] = static_cast<int32_t>(random_u64(5, 1, i) % config.vocab_size);
  }
  std::vector<float> weight(N, 1.0f / N);
  MicroBatch mb{tokens.data(), targets.data(), weight.data(), nullptr, nullptr};
  double loss = 0, timed = 0;
  for (int s = 1; s <= warmup + steps; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    std::fill(grads.begin(), grads.end(), 0.0f);
    loss = stage.forward(*acts, params.data(), mb, nullptr);
    stage.backward(*acts, params.data(), grads.data(), mb, nullptr, nullptr);
    adam.update(params.data(), grads.data(), 1e-3, s, 1.0f);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > warmup) timed += dt;
  }
  std::printf("iris    model=%s params=%lld B=%d T=%d threads=%d steps=%d: %.1f ms/step, %.0f tokens/s (last loss %.4f)\n",
              model_path.c_str(), static_cast<long long>(config.num_parameters()), B, T, omp_get_max_threads(), steps,
              1e3 * timed / steps, N * steps / timed, loss);
  return 0;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const int status = iris::run_tool("iris-cpu-step-bench", [&] { return run(argc, argv); });
  MPI_Finalize();
  return status;
}
