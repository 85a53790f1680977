// Learning-rate schedule: linear warm-up from 0 to lr over warmup steps, then cosine decay to
// min_lr over decay steps (Loshchilov & Hutter 2017, SGDR, without restarts); min_lr afterwards.
#pragma once
#include <cmath>

namespace iris {

struct CosineSchedule {
  double lr = 1e-3, min_lr = 1e-4;
  int warmup = 0, decay = 1;

  // Learning rate of optimizer step `step` (1-based).
  double at(int step) const {
    if (warmup > 0 && step <= warmup) return lr * step / warmup;
    const int t = step - warmup;
    if (t >= decay) return min_lr;
    const double progress = static_cast<double>(t) / decay;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
  }
};

}  // namespace iris
