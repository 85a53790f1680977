#include "src/train/divergence.h"

#include <fmt/format.h>

#include <cmath>

#include "io/checkpoint.h"
#include "src/core/check.h"

namespace iris {
namespace fs = std::filesystem;

DivergenceGuard::DivergenceGuard(DivergenceLimits limits) : limits_(limits) {
  IRIS_USER_CHECK(limits_.max_consecutive >= 0, "train.max_consecutive_skipped must be >= 0 (0: no limit), got {}",
                  limits_.max_consecutive);
  IRIS_USER_CHECK(limits_.max_fraction >= 0 && limits_.max_fraction <= 1,
                  "train.max_skipped_fraction must be in [0, 1] (1: no limit), got {}", limits_.max_fraction);
  IRIS_CHECK(limits_.window > 0, "divergence window {}", limits_.window);
}

bool DivergenceGuard::record(int64_t step, bool skipped) {
  if (diverged()) return true;
  while (!window_skips_.empty() && window_skips_.front() <= step - limits_.window) window_skips_.pop_front();
  if (!skipped) {
    consecutive_ = 0;
    return false;
  }
  if (consecutive_++ == 0) streak_began_ = step;
  window_skips_.push_back(step);
  const auto allowed_in_window = static_cast<size_t>(std::floor(limits_.max_fraction * limits_.window + 1e-9));
  if (limits_.max_consecutive > 0 && consecutive_ > limits_.max_consecutive) {
    trouble_began_ = streak_began_;
    reason_ = fmt::format("{} consecutive steps (from step {}) were skipped as non-finite (train.max_consecutive_skipped "
                          "= {})", consecutive_, streak_began_, limits_.max_consecutive);
  } else if (limits_.max_fraction < 1 && window_skips_.size() > allowed_in_window) {
    trouble_began_ = window_skips_.front();
    reason_ = fmt::format("{} of the last {} steps (from step {}) were skipped as non-finite (train.max_skipped_fraction "
                          "= {} allows {})", window_skips_.size(), limits_.window, trouble_began_, limits_.max_fraction,
                          allowed_in_window);
  }
  return diverged();
}

std::string DivergenceGuard::stop_message(int64_t step, const fs::path& checkpoint_root, double lr) const {
  const std::string head = fmt::format("training diverged at step {}: {}; stopped without saving", step, reason_);
  if (checkpoint_root.empty())
    return head + fmt::format(". checkpoint.dir is empty, so nothing to resume from: restart with a lower optim.lr "
                              "(now {:g})", lr);
  const fs::path good = io::newest_checkpoint_before(checkpoint_root, trouble_began_);
  if (good.empty())
    return head + fmt::format(". {} holds no checkpoint from before step {}: restart from scratch with a lower "
                              "optim.lr (now {:g})", checkpoint_root.string(), trouble_began_, lr);
  return head + fmt::format(". Resume from the last checkpoint before the trouble with a lower learning rate: "
                            "--checkpoint.load {} --optim.lr {:g} (now {:g})", good.string(), lr / 10, lr);
}

}  // namespace iris
