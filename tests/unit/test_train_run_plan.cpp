// Steps from train.epochs (src/train/run_plan.h): ceil(samples × epochs / global batch), decimal
// fractions without an extra step from their binary error, and the refusals.
#include <gtest/gtest.h>

#include "src/core/error.h"
#include "src/train/run_plan.h"

namespace iris {
namespace {

TEST(RunPlan, StepsAreTheCeilingOfSamplesTimesEpochsOverTheGlobalBatch) {
  EXPECT_EQ(plan_from_epochs(1000, 1, 16).steps, 63);    // 62.5 → 63
  EXPECT_EQ(plan_from_epochs(1000, 2, 8).steps, 250);    // exact
  EXPECT_EQ(plan_from_epochs(4430, 0.01, 2).steps, 23);  // 44.3 / 2 = 22.15 → 23
  EXPECT_EQ(plan_from_epochs(7, 10, 64).steps, 2);       // 70 / 64
  EXPECT_EQ(plan_from_epochs(1, 0.001, 1024).steps, 1);  // any positive amount is at least a step
  // 1000 × 0.3 is 300.00000000000006 in double: 300 samples, 30 steps of 10, not 31.
  EXPECT_EQ(plan_from_epochs(1000, 0.3, 10).steps, 30);
  EXPECT_EQ(plan_from_epochs(3, 0.1 + 0.2, 9).steps, 1);  // 0.9000000000000001 samples → 1 step either way
  const RunPlan p = plan_from_epochs(4430, 1.5, 16);
  EXPECT_EQ(p.steps, 416);  // 6645 / 16 = 415.3
  EXPECT_EQ(p.describe(), "train.epochs = 1.5: ceil(4430 samples per epoch × 1.5 / global batch 16) = 416 steps");
}

TEST(RunPlan, TooManyStepsAreRefusedNamingTheKey) {
  try {
    plan_from_epochs(uint64_t{1} << 40, 10, 1);
    FAIL() << "accepted 1e13 steps";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train.epochs = 10"), std::string::npos) << e.what();
  }
  EXPECT_THROW(plan_from_epochs(100, 0, 4), UserError);
}

}  // namespace
}  // namespace iris
