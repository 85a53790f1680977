// DivergenceGuard: the consecutive and the windowed limits trip exactly one step past what they allow,
// good steps reset the streak, old skips leave the window, 0 / 1 disable the limits, and the stop message
// names the newest checkpoint saved before the trouble began.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "src/core/error.h"
#include "src/train/divergence.h"

namespace fs = std::filesystem;
using iris::DivergenceGuard;
using iris::DivergenceLimits;

namespace {

// Feeds steps first..last with skipped = pattern(step); returns the step at which the guard tripped (0: never).
template <class Pattern>
int64_t first_trip(DivergenceGuard& g, int64_t first, int64_t last, Pattern skipped) {
  for (int64_t s = first; s <= last; ++s)
    if (g.record(s, skipped(s))) return s;
  return 0;
}

TEST(Divergence, ConsecutiveLimitTripsOnTheStepPastIt) {
  DivergenceGuard g({10, 1.0, 100});  // windowed limit off
  EXPECT_EQ(first_trip(g, 1, 5, [](int64_t) { return false; }), 0);
  EXPECT_EQ(first_trip(g, 6, 100, [](int64_t) { return true; }), 16);  // steps 6..15 are 10 allowed, 16 is the 11th
  EXPECT_TRUE(g.diverged());
  EXPECT_EQ(g.trouble_began(), 6);
  EXPECT_NE(g.reason().find("11 consecutive steps (from step 6)"), std::string::npos) << g.reason();
  EXPECT_TRUE(g.record(17, false));  // stays diverged
}

TEST(Divergence, AGoodStepResetsTheStreak) {
  DivergenceGuard g({3, 1.0, 100});
  // skip, skip, skip, good, repeated: never 4 in a row.
  EXPECT_EQ(first_trip(g, 1, 200, [](int64_t s) { return s % 4 != 0; }), 0);
  EXPECT_FALSE(g.diverged());
}

TEST(Divergence, WindowedFractionTripsOnTheSkipPastIt) {
  DivergenceGuard g({0, 0.1, 100});  // consecutive limit off; 10 skips of the last 100 allowed
  // Every 5th step skipped: the 11th skip (step 55) is the 11th within the last 100 steps.
  EXPECT_EQ(first_trip(g, 1, 1000, [](int64_t s) { return s % 5 == 0; }), 55);
  EXPECT_EQ(g.trouble_began(), 5);
  EXPECT_NE(g.reason().find("11 of the last 100 steps"), std::string::npos) << g.reason();
}

TEST(Divergence, OldSkipsLeaveTheWindow) {
  DivergenceGuard g({0, 0.1, 100});
  // Every 10th step skipped: exactly 10 in any 100 consecutive steps, never more.
  EXPECT_EQ(first_trip(g, 1, 2000, [](int64_t s) { return s % 10 == 0; }), 0);
  // One more skip inside the current window tips it over.
  EXPECT_TRUE(g.record(2001, true));
}

TEST(Divergence, LimitsCanBeSwitchedOffAndAreValidated) {
  DivergenceGuard g({0, 1.0, 100});
  EXPECT_EQ(first_trip(g, 1, 1000, [](int64_t) { return true; }), 0);
  EXPECT_THROW(DivergenceGuard({-1, 0.1, 100}), iris::UserError);
  EXPECT_THROW(DivergenceGuard({10, 1.5, 100}), iris::UserError);
}

TEST(Divergence, StopMessageNamesTheCheckpointBeforeTheTrouble) {
  const fs::path root = fs::temp_directory_path() / ("iris_divergence_test_" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (const char* d : {"step_00000004", "step_00000008", "step_00000012", "step_00000006.tmp", "step_00000007"}) {
    fs::create_directories(root / d);
    if (std::string(d) != "step_00000007") std::ofstream(root / d / "manifest.json") << "{}";
  }
  DivergenceGuard g({2, 1.0, 100});
  first_trip(g, 1, 20, [](int64_t s) { return s >= 9; });  // trips at step 11, trouble from step 9
  ASSERT_TRUE(g.diverged());
  const std::string msg = g.stop_message(11, root, 1e-3);
  // step 8 is the newest complete checkpoint before step 9 (12 is after, 7 has no manifest, 6 is partial).
  EXPECT_NE(msg.find("training diverged at step 11"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--checkpoint.load " + (root / "step_00000008").string() + " --optim.lr 0.0001"), std::string::npos)
      << msg;
  EXPECT_NE(DivergenceGuard(g).stop_message(11, root / "absent", 1e-3).find("holds no checkpoint"), std::string::npos);
  EXPECT_NE(g.stop_message(11, "", 1e-3).find("checkpoint.dir is empty"), std::string::npos);
  fs::remove_all(root);
}

}  // namespace
