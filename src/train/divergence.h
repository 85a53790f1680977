// When a run has diverged: too many non-finite (skipped) steps in a row, or too large a share of the
// recent steps. The skip decision is the same on every rank (loss and gradient norm are all-reduced), so
// every rank's guard says "stop" at the same step without communicating; the trainer then exits with
// kExitDiverged (exit_codes.h) and the job script does not requeue (docs/design.md, Reliability).
#pragma once
#include <cstdint>
#include <deque>
#include <filesystem>
#include <string>

namespace iris {

struct DivergenceLimits {
  int max_consecutive = 10;   // train.max_consecutive_skipped; 0: no limit
  double max_fraction = 0.1;  // train.max_skipped_fraction of the last `window` steps; 1: no limit
  int window = 100;
};

class DivergenceGuard {
 public:
  explicit DivergenceGuard(DivergenceLimits limits = {});
  // Records the outcome of optimizer step `step` (steps come in increasing order). True once a limit is
  // exceeded: more than max_consecutive skipped steps in a row, or more than max_fraction · window
  // skipped among the last `window` steps (fewer steps recorded count as not skipped). Stays true.
  bool record(int64_t step, bool skipped);
  bool diverged() const { return !reason_.empty(); }
  // What was exceeded, e.g. "11 consecutive steps were skipped as non-finite (train.max_consecutive_skipped = 10)".
  const std::string& reason() const { return reason_; }
  // The first skipped step of the trouble: the streak's first step, or the window's first skipped step.
  int64_t trouble_began() const { return trouble_began_; }
  // The stop message: what happened, and which checkpoint (the newest complete one in `checkpoint_root`
  // saved before the trouble began) to resume from with a lower learning rate.
  std::string stop_message(int64_t step, const std::filesystem::path& checkpoint_root, double lr) const;

 private:
  DivergenceLimits limits_;
  std::deque<int64_t> window_skips_;  // skipped steps among the last window steps, oldest first
  int consecutive_ = 0;
  int64_t streak_began_ = 0;
  int64_t trouble_began_ = 0;
  std::string reason_;
};

}  // namespace iris
