#include "src/train/metrics.h"

#include <cmath>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include "src/core/check.h"

namespace iris {

MetricsWriter::MetricsWriter(const std::string& path, long long resumed_at, const std::string& tensorboard_dir) {
  std::string kept;
  if (resumed_at > 0) {
    std::ifstream old(path);
    for (std::string line; std::getline(old, line);) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number() && j["step"].get<long long>() <= resumed_at)
        kept += line + "\n";
    }
  }
  file_ = std::fopen(path.c_str(), "w");
  IRIS_USER_CHECK(file_ != nullptr, "cannot write metrics file {} (is output.dir writable?)", path);
  IRIS_CHECK(std::fwrite(kept.data(), 1, kept.size(), file_) == kept.size(), "writing metrics failed");
  if (!tensorboard_dir.empty()) tensorboard_ = std::make_unique<io::TensorBoardWriter>(tensorboard_dir, resumed_at);
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::write(const StepMetrics& m) {
  nlohmann::json j = {{"step", m.step},          {"loss", m.loss},
                      {"lr", m.lr},              {"grad_norm", m.grad_norm},
                      {"tokens_per_s", m.tokens_per_s}, {"step_time_s", m.step_time_s},
                      {"elapsed_s", m.elapsed_s}, {"tokens", m.tokens},
                      {"skipped", m.skipped},    {"skipped_steps", m.skipped_steps},
                      {"peak_memory_mib", m.peak_memory_mib},
                      {"rank0_peak_memory_mib", m.rank0_peak_memory_mib}, {"mfu", nullptr}};
  if (m.mfu) j["mfu"] = *m.mfu;
  if (m.device_peak_memory_mib) j["device_peak_memory_mib"] = *m.device_peak_memory_mib;
  if (!std::isfinite(m.loss)) j["loss"] = nullptr;  // JSON has no NaN
  if (!std::isfinite(m.grad_norm)) j["grad_norm"] = nullptr;
  if (m.val_loss) j["val_loss"] = std::isfinite(*m.val_loss) ? nlohmann::json(*m.val_loss) : nlohmann::json(nullptr);
  std::string line = j.dump() + "\n";
  IRIS_CHECK(std::fwrite(line.data(), 1, line.size(), file_) == line.size(), "writing metrics failed");
  std::fflush(file_);
  if (!tensorboard_) return;
  // The numbers of the JSON line under the same names (null ones left out), one event each.
  const double now = io::unix_time_now();
  for (const auto& [tag, value] : j.items())
    if (value.is_number() && tag != "step") tensorboard_->add_scalar(tag, m.step, value.get<double>(), now);
  tensorboard_->flush();
}

double peak_rss_mib() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

std::optional<double> dense_bf16_peak_tflops(const std::string& device_name) {
  const auto has = [&](const char* part) { return device_name.find(part) != std::string::npos; };
  if (has("NVL")) return std::nullopt;  // NVL parts have their own (lower) clocks
  if (has("A100")) return 312.0;        // "NVIDIA A100-SXM4-80GB", "NVIDIA A100-PCIE-40GB", "NVIDIA A100 80GB PCIe"
  if (has("H100")) {
    if (has("PCIe")) return 756.0;                   // "NVIDIA H100 PCIe"
    if (has("HBM3") || has("SXM")) return 989.0;     // "NVIDIA H100 80GB HBM3"
    return std::nullopt;
  }
  if (has("H200")) return 989.0;                     // "NVIDIA H200", "NVIDIA GH200 480GB"
  return std::nullopt;
}

std::string format_duration(double seconds) {
  long long s = std::llround(std::max(0.0, seconds));
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

std::string progress_line(const StepMetrics& m, int total_steps, int first_step) {
  const int done = m.step - first_step;  // steps timed in elapsed_s
  double eta = done > 0 ? m.elapsed_s / done * (total_steps - m.step) : 0.0;
  const std::string val = m.val_loss ? fmt::format(" | val loss {:.4f}", *m.val_loss) : "";
  const std::string mfu = m.mfu ? fmt::format(" | MFU {:.1f}%", 100 * *m.mfu) : "";
  const std::string device_mem =
      m.device_peak_memory_mib ? fmt::format(" | GPU mem {:.0f} MiB", *m.device_peak_memory_mib) : "";
  return fmt::format("step {}/{} | loss {:.4f}{} | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s{} | mem {:.0f} MiB{} | "
                     "elapsed {} | ETA {}{}",
                     m.step, total_steps, m.loss, val, m.lr, m.grad_norm, m.tokens_per_s, mfu, m.peak_memory_mib, device_mem,
                     format_duration(m.elapsed_s), format_duration(eta), m.skipped ? " | SKIPPED (non-finite)" : "");
}

}  // namespace iris
