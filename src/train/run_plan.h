// How many optimizer steps a run takes: train.steps as given, or derived from train.epochs as Hugging
// Face's Trainer does (num_train_epochs × update steps per epoch, rounded up), counting the samples the
// training source serves per epoch (pretraining windows, or SFT rows after packing).
#pragma once
#include <cstdint>
#include <string>

namespace iris {

struct RunPlan {
  int64_t steps = 0;             // optimizer steps of the whole run
  uint64_t samples_per_epoch = 0;  // 0 when train.steps decided
  double epochs = 0;             // 0 when train.steps decided
  int64_t global_batch = 0;      // samples per optimizer step over all DP ranks
  // One start-up line, e.g. "train.epochs = 1.5: 1000 samples per epoch × 1.5 / global batch 16 = 94 steps".
  std::string describe() const;
};

// steps = ceil(samples_per_epoch × epochs / global_batch). The product is rounded to 1e-6 of a sample
// first, so a decimal fraction's binary error (1000 × 0.3 = 300.00000000000006) does not add a step.
// UserError naming train.epochs when the run would exceed the largest step count.
RunPlan plan_from_epochs(uint64_t samples_per_epoch, double epochs, int64_t global_batch);

}  // namespace iris
