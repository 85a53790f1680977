// iris-bench's output: one table per model (tokens/s, MFU, peak memory, what saved memory, the
// Iris/PyTorch ratio), the targets marked met or not (printed, never asserted), and out/results.json with
// the same figures for scripts. A side whose losses do not behave (bench_checks.cpp) shows INVALID and
// no speed: it enters no ratio, MFU or target.
// Both MFUs use the FLOPs per token of docs/design.md ("Performance") over one peak: --peak-tflops,
// else the peak implied by iris-train's own mfu (tokens/s × FLOPs per token / mfu); unknown when
// neither exists.
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>

#include "bench/bench_driver.h"

namespace iris::bench {

namespace {

constexpr double kTargetRatio = 1.5;     // Iris tokens/s over PyTorch's, llama3.2-1b
constexpr const char* kRatioTargetModel = "llama3.2-1b";
constexpr double kTargetMfu7b = 0.50;    // Iris MFU, llama2-7b (a 7B-shaped model with fewer layers too)
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
  return {{"ok", s.ok}, {"error", s.error}, {"validity", s.validity}, {"losses", s.losses},
          {"tokens_per_s", s.valid() ? nlohmann::json(s.tokens_per_s) : nlohmann::json(nullptr)},
          {"mfu", optional_json(s.mfu)}, {"peak_memory_mib", optional_json(s.peak_memory_mib)},
          {"peak_memory_kind", s.peak_memory_kind}, {"memory_saving", s.memory_saving}, {"notes", s.notes},
          {"attempts", s.attempts}, {"reported", s.raw}};
}

void print_side(const char* label, const SideResult& s, bool ran) {
  if (!ran) return;
  if (!s.ok) {
    std::printf("  %-8s  %s%s\n", label, s.error.starts_with("REFUSED") ? "" : "FAILED: ", s.error.c_str());
    return;
  }
  if (!s.valid()) {
    std::printf("  %-8s  %s (the run's speed is not reported)\n", label, s.validity.c_str());
    return;
  }
  const std::string memory = s.peak_memory_mib ? group_digits(*s.peak_memory_mib) + " MiB" : "unknown";
  std::printf("  %-8s  %14s  %8s  %14s  %-28s  %s\n", label, group_digits(s.tokens_per_s).c_str(), percent(s.mfu).c_str(),
              memory.c_str(), s.memory_saving.c_str(), s.peak_memory_kind.c_str());
}

// One peak for both sides, and the MFUs over it; only valid runs count.
void fill_mfus(const Options& opt, ModelResult& m) {
  if (opt.peak_tflops > 0) {
    m.peak_tflops = opt.peak_tflops;
  } else if (m.iris.valid() && m.iris.mfu && *m.iris.mfu > 0) {
    m.peak_tflops = m.iris.tokens_per_s * m.flops_per_token / *m.iris.mfu / 1e12;
  }
  if (!m.peak_tflops) return;
  if (m.torch.valid()) m.torch.mfu = m.torch.tokens_per_s * m.flops_per_token / (*m.peak_tflops * 1e12);
  if (m.iris.valid() && !m.iris.mfu) m.iris.mfu = m.iris.tokens_per_s * m.flops_per_token / (*m.peak_tflops * 1e12);
}

// The model's table and targets (printed when `print`), as results.json's entry.
nlohmann::json model_report(const Options& opt, ModelResult& m, bool print) {
  fill_mfus(opt, m);
  std::optional<double> ratio;
  if (m.iris.valid() && m.torch.valid()) ratio = m.iris.tokens_per_s / m.torch.tokens_per_s;
  const std::string stem = model_stem(m.name);
  nlohmann::json targets = nlohmann::json::object();
  std::vector<std::string> target_lines;
  if (opt.run_iris && opt.run_torch && stem == kRatioTargetModel) {
    const std::string met = !ratio ? "unknown" : *ratio >= kTargetRatio ? "met" : "not met";
    target_lines.push_back(fmt::format("target Iris/PyTorch tokens/s >= {:.1f} ({}): {}{}", kTargetRatio,
                                       kRatioTargetModel, met, ratio ? fmt::format(" ({:.2f})", *ratio) : ""));
    targets["ratio"] = {{"target", kTargetRatio}, {"value", optional_json(ratio)}, {"status", met}};
  }
  if (opt.run_iris && stem == kMfuTargetModel) {
    std::optional<double> mfu;
    if (m.iris.valid()) mfu = m.iris.mfu;
    const std::string met = !mfu ? "unknown" : *mfu >= kTargetMfu7b ? "met" : "not met";
    const std::string layers = m.layers < m.model_layers ? fmt::format(", {} of its {} layers", m.layers, m.model_layers) : "";
    target_lines.push_back(fmt::format("target Iris MFU >= {:.0f}% ({}{}): {} ({})", 100 * kTargetMfu7b,
                                       kMfuTargetModel, layers, met, percent(mfu)));
    targets["mfu"] = {{"target", kTargetMfu7b}, {"value", optional_json(mfu)}, {"status", met}};
  }
  if (print) {
    const long long tokens_per_step = 1LL * opt.micro_batch * opt.seq * opt.grad_accum;
    std::printf("\n== %s%s: %s parameters, %.3g GFLOP per token at seq %d | micro-batch %d x seq %d x grad-accum %d = %s "
                "tokens per step | %s | mean of %d steps after %d warm-up\n",
                m.name.c_str(), m.layers < m.model_layers ? fmt::format(" ({} of {} layers)", m.layers, m.model_layers).c_str() : "",
                group_digits(static_cast<double>(m.parameters)).c_str(), m.flops_per_token / 1e9, opt.seq,
                opt.micro_batch, opt.seq, opt.grad_accum, group_digits(static_cast<double>(tokens_per_step)).c_str(),
                opt.device.c_str(), opt.steps, opt.warmup_steps);
    if (!m.fit.why.empty()) std::printf("  [plan] %s\n", m.fit.why.c_str());
    std::printf("  %-8s  %14s  %8s  %14s  %-28s  %s\n", "side", "tokens/s", "MFU", "peak memory", "memory saving",
                "memory figure");
    print_side("Iris", m.iris, m.ran_iris);
    print_side("PyTorch", m.torch, m.ran_torch);
    if (ratio) std::printf("  Iris / PyTorch tokens/s: %.2f\n", *ratio);
    std::printf("  MFU: %s\n", m.peak_tflops ? fmt::format("over a peak of {:.4g} TFLOP/s ({})", *m.peak_tflops,
                                                           opt.peak_tflops > 0 ? "--peak-tflops" : "iris-train's own")
                                                   .c_str()
                                             : "unknown (iris-train reported no MFU; --peak-tflops gives one)");
    for (const auto& n : m.iris.notes) std::printf("  Iris: %s\n", n.c_str());
    for (const auto& n : m.torch.notes) std::printf("  PyTorch: %s\n", n.c_str());
    for (const auto& t : target_lines) std::printf("  %s\n", t.c_str());
  }
  return {{"name", m.name}, {"config", m.config_path}, {"parameters", m.parameters}, {"layers", m.layers},
          {"model_layers", m.model_layers}, {"flops_per_token", m.flops_per_token},
          {"plan", {{"fits", m.fit.fits}, {"recompute", m.fit.recompute}, {"need_gib", m.fit.need_gib},
                    {"have_gib", m.fit.have_gib}, {"why", m.fit.why}}},
          {"peak_tflops", optional_json(m.peak_tflops)}, {"iris", side_json(m.iris)}, {"pytorch", side_json(m.torch)},
          {"ratio_tokens_per_s", optional_json(ratio)}, {"targets", targets}};
}

}  // namespace

void report(const Options& opt, std::vector<ModelResult>& results) {
  nlohmann::json models = nlohmann::json::array();
  for (size_t i = 0; i < results.size(); ++i) models.push_back(model_report(opt, results[i], i + 1 == results.size()));
  nlohmann::json out = {
      {"options",
       {{"seq", opt.seq}, {"micro_batch", opt.micro_batch}, {"grad_accum", opt.grad_accum}, {"steps", opt.steps},
        {"warmup_steps", opt.warmup_steps}, {"device", opt.device}, {"recompute", opt.recompute}, {"gpu", opt.gpu},
        {"torch_checkpointing", opt.torch_checkpointing}, {"torch_compile", opt.torch_compile},
        {"peak_tflops", opt.peak_tflops}, {"threads", opt.threads}, {"python", opt.python}}},
      {"models", models}};
  const std::string path = (std::filesystem::path(opt.out) / "results.json").string();
  write_text(path + ".tmp", out.dump(2) + "\n");
  std::filesystem::rename(path + ".tmp", path);  // a reader never sees half a file
  std::printf("\nresults: %s\n", path.c_str());
  std::fflush(stdout);
}

}  // namespace iris::bench
