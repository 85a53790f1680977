// The lengths of a run's LR schedule phases from the optim.* keys (lr_schedule.h).
#include "src/train/lr_schedule.h"

#include <algorithm>

namespace iris {

LrSchedule make_lr_schedule(LrScheduleKind kind, double lr, double min_lr, int total_steps, int warmup_steps,
                            double warmup_ratio, int decay_steps, double decay_ratio) {
  // ceil in double would turn 0.1 · 30 = 3.0000000000000004 into 4: round off the representation error first.
  const auto ratio_steps = [total_steps](double ratio) {
    return static_cast<int>(std::ceil(std::round(ratio * total_steps * 1e9) / 1e9));
  };
  LrSchedule s;
  s.kind = kind;
  s.lr = lr;
  s.min_lr = min_lr;
  s.warmup = warmup_ratio > 0 ? ratio_steps(warmup_ratio) : std::max(0, warmup_steps);
  const int after_warmup = std::max(1, total_steps - s.warmup);
  if (kind == LrScheduleKind::Wsd) {
    s.decay = std::clamp(decay_steps > 0 ? decay_steps : ratio_steps(decay_ratio), 1, after_warmup);
    s.hold = after_warmup - s.decay;
  } else {
    s.decay = decay_steps > 0 ? decay_steps : after_warmup;
  }
  return s;
}

}  // namespace iris
