#include "src/train/optimizer.h"

#include <algorithm>

#include "src/core/check.h"
#include "src/kernels/cpu/ops.h"

namespace iris {

AdamW::AdamW(const ParamTable& table, AdamWConfig config, size_t begin, size_t end)
    : config_(config), begin_(begin), end_(end), m_(end - begin, 0.0f), v_(end - begin, 0.0f) {
  IRIS_CHECK(begin <= end && end <= table.total_numel(), "optimizer range [{}, {}) outside buffer of {}", begin, end,
             table.total_numel());
  segments_ = adamw_segments(table, begin, end);
}

std::vector<AdamW::Segment> adamw_segments(const ParamTable& table, size_t begin, size_t end) {
  std::vector<AdamW::Segment> segments;
  for (const auto& e : table.entries()) {
    size_t b = std::max(begin, e.offset), f = std::min(end, e.offset + e.numel);
    if (b < f) segments.push_back({b, f, e.weight_decay});
  }
  return segments;
}

void AdamW::update(float* params, const float* grads, double lr, int step, float grad_scale) {
  for (const auto& s : segments_) {
    const size_t local = s.begin - begin_;
    cpu::adamw_update(params + s.begin, m_.data() + local, v_.data() + local, grads + s.begin, s.end - s.begin,
                      static_cast<float>(lr), static_cast<float>(config_.beta1), static_cast<float>(config_.beta2),
                      static_cast<float>(config_.eps), s.decay ? static_cast<float>(config_.weight_decay) : 0.0f, step,
                      grad_scale);
  }
}

double grad_sum_squares(const ParamTable& table, const float* grads, size_t begin, size_t end, bool skip_replicated) {
  double total = 0.0;
  for (const auto& e : table.entries()) {
    if (skip_replicated && table.replicated(e)) continue;
    size_t b = std::max(begin, e.offset), f = std::min(end, e.offset + e.numel);
    if (b < f) total += cpu::sum_squares(grads + b, f - b);
  }
  return total;
}

}  // namespace iris
