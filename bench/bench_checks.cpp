// iris-bench's checks around the Iris side: before it runs, the planner (src/plan) says whether the model
// fits and with which recompute mode, so no time goes into a run that would run out of memory (no retries);
// after it, the losses say whether the numbers come from a model that computes correctly.
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "bench/bench_driver.h"
#include "src/core/check.h"
#include "src/plan/cpu_memory.h"
#include "src/plan/plan.h"

namespace fs = std::filesystem;

namespace iris::bench {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// A model fits when the planner's peak is within 95% of the memory: its byte counts have not yet been
// checked against a GPU's measured peak (docs/planning.md), the allocator fragments, and a run that runs
// out of memory anyway costs a GPU session its number (there are no retries).
constexpr double kHeadroom = 0.95;

// MemAvailable of /proc/meminfo, the CPU side's budget when --memory-gib is not given.
double available_host_gib() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib / (1024.0 * 1024.0);
  return 0;
}

plan::GpuSpec gpu_spec(const Options& opt) {
  IRIS_USER_CHECK(!opt.gpu.empty(),
                  "--device cuda needs --gpu KEY (an entry of configs/hardware/gpus.json, e.g. h100-80gb), so the "
                  "planner can say whether the model fits before any time is spent");
  std::string path = opt.hardware;
  if (path.empty()) {  // the table built into the program
    path = (fs::path(opt.out) / "gpus.json").string();
    write_text(path, kGpuTable);
  }
  return plan::find_gpu(path, opt.gpu);
}

// Bytes one rank needs (the worst stage's total on the GPU, peak RSS on the CPU) and the budget, in GiB.
std::pair<double, double> need_and_have(const Options& opt, const LlamaConfig& config, Recompute recompute) {
  if (opt.device_kind == Device::Cuda) {
    const plan::GpuSpec gpu = gpu_spec(opt);
    plan::Job job;
    job.gpus = job.gpus_per_node = 1;
    job.seq = opt.seq;
    job.micro_batch = opt.micro_batch;
    job.global_batch = opt.micro_batch * opt.grad_accum;
    job.recompute = recompute;
    const plan::LayoutPlan p = plan::plan_layout(config, gpu, job, 1, 1);
    IRIS_USER_CHECK(p.refusal.empty(), "the planner refuses one GPU for {}: {}", config.source, p.refusal);
    return {p.worst.total() / kGiB, gpu.memory_gib};
  }
  plan::CpuRun run;
  run.micro_batch = opt.micro_batch;
  run.grad_accum = opt.grad_accum;
  run.seq_len = opt.seq;
  run.recompute = recompute;
  const double need = plan::cpu_rank0_memory(config, run, plan::cpu_process_baseline_mib(1)).total() / kGiB;
  return {need, opt.memory_gib > 0 ? opt.memory_gib : available_host_gib()};
}

LlamaConfig with_layers(const LlamaConfig& config, int layers) {
  nlohmann::json j = config.raw;
  j["num_hidden_layers"] = layers;
  return LlamaConfig::from_json(j, config.source);
}

}  // namespace

FitDecision plan_fit(const Options& opt, const LlamaConfig& config) {
  // --recompute auto is the least recompute that fits: none keeps the most, full the least (docs/planning.md).
  const std::vector<std::string> modes =
      opt.recompute == "auto" ? std::vector<std::string>{"none", "selective", "full"} : std::vector<std::string>{opt.recompute};
  FitDecision d;
  const int lowest = opt.fit_layers ? 1 : config.num_hidden_layers;
  for (int L = config.num_hidden_layers; L >= lowest && !d.fits; --L) {
    const LlamaConfig c = L == config.num_hidden_layers ? config : with_layers(config, L);
    for (const auto& mode : modes) {
      const auto [need, have] = need_and_have(opt, c, parse_recompute(mode, "--recompute"));
      if (L == config.num_hidden_layers && mode == modes.front()) d.need_gib = need, d.have_gib = have;
      if (need <= kHeadroom * have) {
        d = {true, mode, L, need, have, ""};
        break;
      }
    }
  }
  const std::string where = opt.device_kind == Device::Cuda ? fmt::format("one {}", opt.gpu) : "this host";
  if (!d.fits) {
    d.why = fmt::format("the planner says {} does not fit on {}: {:.1f} GiB needed with recompute {}, {:.1f} GiB there "
                        "(95% usable){}",
                        config.source, where, d.need_gib, modes.front(), d.have_gib,
                        opt.fit_layers ? " (even with one layer)" : "; --fit-layers runs as many of its layers as fit");
    return d;
  }
  d.why = fmt::format("the planner says {} layers of {} fit on {} with recompute {}: {:.1f} of {:.1f} GiB (95% usable)",
                      d.layers, config.num_hidden_layers, where, d.recompute, d.need_gib, d.have_gib);
  return d;
}

std::string write_layers_config(const LlamaConfig& config, int layers, const std::string& path) {
  nlohmann::json j = config.raw;
  j["num_hidden_layers"] = layers;
  write_text(path, j.dump(2) + "\n");
  return path;
}

double init_loss(const LlamaConfig& config) {
  // At a random init each logit is h·w with h the final RMSNorm's output (|h|² = C) and w's elements drawn
  // with std initializer_range: Gaussian with variance C·std², whose log-sum-exp over V tokens is
  // ln V + C·std²/2 (E[e^X] = e^(σ²/2)). ln V alone is off by 0.41 at llama3.2-1b and 0.82 at llama2-7b.
  const double std = config.raw.value("initializer_range", 0.02);
  return std::log(static_cast<double>(config.vocab_size)) + config.hidden_size * std * std / 2;
}

std::string loss_verdict(const std::vector<double>& losses, const LlamaConfig& config, int warmup_steps, bool must_fall) {
  if (losses.empty()) return "INVALID: no losses reported";
  for (double l : losses)
    if (!std::isfinite(l)) return "INVALID: a loss is not finite";
  // A wrong init scale or a broken forward starts far from the random init's loss.
  const double expected = init_loss(config);
  if (std::abs(losses.front() - expected) > kFirstLossTolerance)
    return fmt::format("INVALID: first loss {:.3f}, not within {} of the random init's {:.3f} (ln V + C·std²/2)",
                       losses.front(), kFirstLossTolerance, expected);
  if (must_fall) {
    const size_t first_timed = std::min(losses.size() - 1, static_cast<size_t>(warmup_steps));
    // Below the first timed step's and below the first step's: a huge learning rate can fall from a peak.
    if (losses.size() < 2 || !(losses.back() < losses[first_timed]) || !(losses.back() < losses.front()))
      return fmt::format("INVALID: the loss did not fall over the timed steps ({:.4f} at step 1, {:.4f} at step {}, "
                         "{:.4f} at step {})", losses.front(), losses[first_timed], first_timed + 1, losses.back(),
                         losses.size());
  }
  return "valid";
}

}  // namespace iris::bench
