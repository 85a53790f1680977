// iris-bench's output: one table per model (tokens/s, MFU, peak memory, what saved memory, the
// Iris/PyTorch ratio), the targets marked met or not (printed, never asserted), and
// out/results.json with the same figures for scripts.
// Both MFUs use the FLOPs per token of docs/design.md ("Performance") over one peak: --peak-tflops,
// else the peak implied by iris-train's own mfu (tokens/s × FLOPs per token / mfu); unknown when
// neither exists.
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>

#include "bench/bench_driver.h"

namespace iris::bench {

namespace {

constexpr double kTargetRatio = 1.3;     // Iris tokens/s over PyTorch's, every model
constexpr double kTargetMfu7b = 0.45;    // Iris MFU, llama2-7b
constexpr const char* kMfuTargetModel = "llama2-7b";

std::string group_digits(double x) {
  std::string s = fmt::format("{:.0f}", x), out;
  const int n = static_cast<int>(s.size());
  for (int i = 0; i < n; ++i) {
    out += s[i];
    if ((n - i - 1) % 3 == 0 && i + 1 < n && s[i] != '-') out += ',';
  }
  return out;
}

std::string percent(const std::optional<double>& x) { return x ? fmt::format("{:.1f}%", 100 * *x) : "unknown"; }

nlohmann::json optional_json(const std::optional<double>& x) { return x ? nlohmann::json(*x) : nlohmann::json(nullptr); }

nlohmann::json side_json(const SideResult& s) {
  return {{"ok", s.ok}, {"error", s.error}, {"tokens_per_s", s.ok ? nlohmann::json(s.tokens_per_s) : nlohmann::json(nullptr)},
          {"mfu", optional_json(s.mfu)}, {"peak_memory_mib", optional_json(s.peak_memory_mib)},
          {"peak_memory_kind", s.peak_memory_kind}, {"memory_saving", s.memory_saving}, {"notes", s.notes},
          {"attempts", s.attempts}, {"reported", s.raw}};
}

void print_side(const char* label, const SideResult& s, bool ran) {
  if (!ran) return;
  if (!s.ok) {
    std::printf("  %-8s  FAILED: %s\n", label, s.error.c_str());
    return;
  }
  const std::string memory = s.peak_memory_mib ? group_digits(*s.peak_memory_mib) + " MiB" : "unknown";
  std::printf("  %-8s  %14s  %8s  %14s  %-28s  %s\n", label, group_digits(s.tokens_per_s).c_str(), percent(s.mfu).c_str(),
              memory.c_str(), s.memory_saving.c_str(), s.peak_memory_kind.c_str());
}

}  // namespace

void report(const Options& opt, std::vector<ModelResult>& results) {
  nlohmann::json models = nlohmann::json::array();
  bool any_target_checked = false;
  for (auto& m : results) {
    // One peak for both sides.
    if (opt.peak_tflops > 0) {
      m.peak_tflops = opt.peak_tflops;
    } else if (m.iris.ok && m.iris.mfu && *m.iris.mfu > 0) {
      m.peak_tflops = m.iris.tokens_per_s * m.flops_per_token / *m.iris.mfu / 1e12;
    }
    if (m.peak_tflops && m.torch.ok) m.torch.mfu = m.torch.tokens_per_s * m.flops_per_token / (*m.peak_tflops * 1e12);
    if (m.peak_tflops && m.iris.ok && !m.iris.mfu) m.iris.mfu = m.iris.tokens_per_s * m.flops_per_token / (*m.peak_tflops * 1e12);

    const long long tokens_per_step = 1LL * opt.micro_batch * opt.seq * opt.grad_accum;
    std::printf("\n== %s: %s parameters, %.3g GFLOP per token at seq %d | micro-batch %d x seq %d x grad-accum %d = %s "
                "tokens per step | %s | mean of %d steps after %d warm-up\n",
                m.name.c_str(), group_digits(static_cast<double>(m.parameters)).c_str(), m.flops_per_token / 1e9, opt.seq,
                opt.micro_batch, opt.seq, opt.grad_accum, group_digits(static_cast<double>(tokens_per_step)).c_str(),
                opt.device.c_str(), opt.steps, opt.warmup_steps);
    std::printf("  %-8s  %14s  %8s  %14s  %-28s  %s\n", "side", "tokens/s", "MFU", "peak memory", "memory saving",
                "memory figure");
    print_side("Iris", m.iris, opt.run_iris);
    print_side("PyTorch", m.torch, opt.run_torch);
    std::optional<double> ratio;
    if (m.iris.ok && m.torch.ok) ratio = m.iris.tokens_per_s / m.torch.tokens_per_s;
    if (ratio) std::printf("  Iris / PyTorch tokens/s: %.2f\n", *ratio);
    std::printf("  MFU: %s\n", m.peak_tflops ? fmt::format("over a peak of {:.4g} TFLOP/s ({})", *m.peak_tflops,
                                                           opt.peak_tflops > 0 ? "--peak-tflops" : "iris-train's own")
                                                   .c_str()
                                             : "unknown (iris-train reported no MFU; --peak-tflops gives one)");
    for (const auto& n : m.iris.notes) std::printf("  Iris: %s\n", n.c_str());
    for (const auto& n : m.torch.notes) std::printf("  PyTorch: %s\n", n.c_str());

    nlohmann::json targets = nlohmann::json::object();
    if (opt.run_iris && opt.run_torch) {
      const std::string met = !ratio ? "unknown" : *ratio >= kTargetRatio ? "met" : "not met";
      std::printf("  target Iris/PyTorch tokens/s >= %.1f: %s%s\n", kTargetRatio, met.c_str(),
                  ratio ? fmt::format(" ({:.2f})", *ratio).c_str() : "");
      targets["ratio"] = {{"target", kTargetRatio}, {"value", optional_json(ratio)}, {"status", met}};
      any_target_checked = true;
    }
    if (opt.run_iris && model_stem(m.name) == kMfuTargetModel) {
      const std::string met = !m.iris.mfu ? "unknown" : *m.iris.mfu >= kTargetMfu7b ? "met" : "not met";
      std::printf("  target Iris MFU >= %.0f%% (%s): %s (%s)\n", 100 * kTargetMfu7b, kMfuTargetModel, met.c_str(),
                  percent(m.iris.mfu).c_str());
      targets["mfu"] = {{"target", kTargetMfu7b}, {"value", optional_json(m.iris.mfu)}, {"status", met}};
      any_target_checked = true;
    }
    models.push_back({{"name", m.name}, {"config", m.config_path}, {"parameters", m.parameters},
                      {"flops_per_token", m.flops_per_token}, {"peak_tflops", optional_json(m.peak_tflops)},
                      {"iris", side_json(m.iris)}, {"pytorch", side_json(m.torch)},
                      {"ratio_tokens_per_s", optional_json(ratio)}, {"targets", targets}});
  }
  if (!any_target_checked) std::printf("\n(targets need both sides; one side ran)\n");
  nlohmann::json out = {
      {"options",
       {{"seq", opt.seq}, {"micro_batch", opt.micro_batch}, {"grad_accum", opt.grad_accum}, {"steps", opt.steps},
        {"warmup_steps", opt.warmup_steps}, {"device", opt.device}, {"recompute", opt.recompute},
        {"torch_checkpointing", opt.torch_checkpointing}, {"torch_compile", opt.torch_compile},
        {"peak_tflops", opt.peak_tflops}, {"threads", opt.threads}, {"python", opt.python}}},
      {"models", models}};
  const std::string path = (std::filesystem::path(opt.out) / "results.json").string();
  write_text(path, out.dump(2) + "\n");
  std::printf("\nresults: %s\n", path.c_str());
}

}  // namespace iris::bench
