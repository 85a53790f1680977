// Learning-rate schedules of optimizer step `step` (1-based): a linear warm-up from 0 to lr over `warmup`
// steps, `hold` steps at lr (wsd's stable phase; 0 otherwise), then a decay to min_lr over `decay` steps
// and min_lr afterwards. Unlike Hugging Face's lambdas (0-based, so its first step runs at lr 0), step k
// of the warm-up here runs at lr·k/warmup, reaching lr on the last warm-up step.
#pragma once
#include <cmath>

namespace iris {

enum class LrScheduleKind {
  Cosine,    // min_lr + ½(lr − min_lr)(1 + cos(π p)) (Loshchilov & Hutter 2017, SGDR, without restarts)
  Linear,    // min_lr + (lr − min_lr)(1 − p)
  Constant,  // lr after the warm-up (HF's constant_with_warmup); min_lr and decay unused
  Wsd,       // warm-up, stable, decay (Hu et al. 2024, MiniCPM): lr for `hold` steps, then the cosine decay
             // over the last `decay` steps, as transformers' get_wsd_schedule does
};

struct LrSchedule {
  double lr = 1e-3, min_lr = 1e-4;
  int warmup = 0, decay = 1;
  LrScheduleKind kind = LrScheduleKind::Cosine;
  int hold = 0;

  // p = (step − warmup − hold) / decay: the fraction of the decay done after this step.
  double at(int step) const {
    if (warmup > 0 && step <= warmup) return lr * step / warmup;
    const int t = step - warmup - hold;
    if (kind == LrScheduleKind::Constant || t <= 0) return lr;
    if (t >= decay) return min_lr;
    const double progress = static_cast<double>(t) / decay;
    if (kind == LrScheduleKind::Linear) return min_lr + (lr - min_lr) * (1.0 - progress);
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
  }
};

// Warm-up and decay lengths from steps or ratios of the run's `total_steps` (HF's rule: a ratio r gives
// ceil(r · total) steps). A warmup_ratio > 0 replaces warmup_steps.
//   cosine, linear: decay over decay_steps, or (decay_steps = 0) the rest of the run after the warm-up;
//   wsd: decay over decay_steps, or (decay_steps = 0) the last ceil(decay_ratio · total) steps, held at lr
//        before that.
LrSchedule make_lr_schedule(LrScheduleKind kind, double lr, double min_lr, int total_steps, int warmup_steps,
                            double warmup_ratio, int decay_steps, double decay_ratio);

}  // namespace iris
