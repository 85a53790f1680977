// Steps from epochs (run_plan.h).
#include "src/train/run_plan.h"

#include <cmath>
#include <limits>

#include "src/core/check.h"

namespace iris {

RunPlan plan_from_epochs(uint64_t samples_per_epoch, double epochs, int64_t global_batch) {
  IRIS_USER_CHECK(epochs > 0 && global_batch > 0 && samples_per_epoch > 0,
                  "train.epochs = {} over {} samples per epoch at global batch {}: need positive values", epochs,
                  samples_per_epoch, global_batch);
  const long double samples = std::round(static_cast<long double>(samples_per_epoch) * epochs * 1e6L) / 1e6L;
  const long double steps = std::ceil(samples / global_batch);
  IRIS_USER_CHECK(steps <= std::numeric_limits<int>::max(),
                  "train.epochs = {}: {} samples per epoch at global batch {} would be {} steps; use fewer epochs",
                  epochs, samples_per_epoch, global_batch, static_cast<double>(steps));
  return RunPlan{static_cast<int64_t>(steps), samples_per_epoch, epochs, global_batch};
}

std::string RunPlan::describe() const {
  if (epochs == 0) return fmt::format("train.steps = {} (global batch {})", steps, global_batch);
  return fmt::format("train.epochs = {}: ceil({} samples per epoch × {} / global batch {}) = {} steps", epochs,
                     samples_per_epoch, epochs, global_batch, steps);
}

}  // namespace iris
