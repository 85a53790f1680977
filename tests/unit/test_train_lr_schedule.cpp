// LR schedules (src/train/lr_schedule.h): every kind against its closed form at every step of a run,
// the phase lengths from steps and ratios (HF's ceil(ratio × steps)), and the optim.* keys that choose them.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "src/core/error.h"
#include "src/train/config.h"
#include "src/train/lr_schedule.h"
#include "tests/unit/config_test_util.h"

namespace iris {
namespace {

constexpr double kTol = 1e-12;  // double arithmetic, lr of order 1e-3

// The closed forms, written per phase from the phase boundaries (not with LrSchedule's arithmetic):
// warm-up 1 … W, hold W+1 … W+H, decay W+H+1 … W+H+D, then the floor.
double closed_form(LrScheduleKind kind, double peak, double floor, int W, int H, int D, int step) {
  if (step <= W) return peak * step / W;
  if (kind == LrScheduleKind::Constant || step <= W + H) return peak;
  if (step >= W + H + D) return floor;
  const double p = double(step - W - H) / D;
  switch (kind) {
    case LrScheduleKind::Linear: return peak - (peak - floor) * p;
    default: return floor + (peak - floor) * (std::cos(M_PI * p) + 1) / 2;  // cosine, wsd's decay
  }
}

void expect_every_step(const LrSchedule& s, int W, int H, int D, int total, const char* what) {
  for (int step = 1; step <= total + 5; ++step)
    ASSERT_NEAR(s.at(step), closed_form(s.kind, s.lr, s.min_lr, W, H, D, step), kTol) << what << " step " << step;
}

TEST(LrSchedule, CosineEveryStep) {
  const LrSchedule s = make_lr_schedule(LrScheduleKind::Cosine, 3e-4, 3e-5, 200, 20, 0, 0, 0.1);
  EXPECT_EQ(s.warmup, 20);
  EXPECT_EQ(s.decay, 180);
  expect_every_step(s, 20, 0, 180, 200, "cosine");
  EXPECT_NEAR(s.at(200), 3e-5, kTol);  // the last step is at min_lr
  EXPECT_NEAR(s.at(110), (3e-4 + 3e-5) / 2, kTol);  // halfway through the decay
}

TEST(LrSchedule, LinearEveryStep) {
  const LrSchedule s = make_lr_schedule(LrScheduleKind::Linear, 1e-3, 0, 100, 10, 0, 0, 0.1);
  expect_every_step(s, 10, 0, 90, 100, "linear");
  EXPECT_NEAR(s.at(55), 5e-4, kTol);   // 45 of 90 decay steps: half the peak
  EXPECT_NEAR(s.at(100), 0.0, kTol);
  // An explicit decay shorter than the run reaches the floor early and stays there.
  const LrSchedule early = make_lr_schedule(LrScheduleKind::Linear, 1e-3, 1e-4, 100, 10, 0, 40, 0.1);
  expect_every_step(early, 10, 0, 40, 100, "linear, decay_steps 40");
  EXPECT_EQ(early.at(50), 1e-4);
  EXPECT_EQ(early.at(99), 1e-4);
}

TEST(LrSchedule, ConstantEveryStep) {
  const LrSchedule s = make_lr_schedule(LrScheduleKind::Constant, 2e-4, 1e-5, 50, 5, 0, 0, 0.1);
  expect_every_step(s, 5, 0, 45, 50, "constant");
  for (int step = 5; step <= 50; ++step) EXPECT_EQ(s.at(step), 2e-4) << step;
  EXPECT_NEAR(s.at(1), 4e-5, kTol);
}

TEST(LrSchedule, WsdEveryStep) {
  // 100 steps: 10 warm-up, 10% decay (the last 10 steps), so 80 stable steps at the peak.
  const LrSchedule s = make_lr_schedule(LrScheduleKind::Wsd, 1e-3, 1e-4, 100, 10, 0, 0, 0.1);
  EXPECT_EQ(s.warmup, 10);
  EXPECT_EQ(s.hold, 80);
  EXPECT_EQ(s.decay, 10);
  expect_every_step(s, 10, 80, 10, 100, "wsd");
  EXPECT_EQ(s.at(90), 1e-3);             // the last stable step
  EXPECT_LT(s.at(91), 1e-3);             // the decay starts
  EXPECT_NEAR(s.at(95), 5.5e-4, kTol);   // halfway: cos(π/2) = 0
  EXPECT_NEAR(s.at(100), 1e-4, kTol);
  // decay_steps instead of the ratio.
  const LrSchedule by_steps = make_lr_schedule(LrScheduleKind::Wsd, 1e-3, 0, 100, 0, 0, 25, 0.1);
  EXPECT_EQ(by_steps.hold, 75);
  expect_every_step(by_steps, 0, 75, 25, 100, "wsd, decay_steps 25");
}

TEST(LrSchedule, RatiosGiveHfCeilSteps) {
  // HF: warm-up steps = ceil(num_training_steps × warmup_ratio). 0.1 × 30 is 3.0000000000000004 in double
  // and must give 3, not 4; 0.03 × 1000 = 30, 0.05 × 333 = 16.65 → 17.
  EXPECT_EQ(make_lr_schedule(LrScheduleKind::Cosine, 1e-3, 0, 30, 99, 0.1, 0, 0.1).warmup, 3);
  EXPECT_EQ(make_lr_schedule(LrScheduleKind::Cosine, 1e-3, 0, 1000, 99, 0.03, 0, 0.1).warmup, 30);
  const LrSchedule s = make_lr_schedule(LrScheduleKind::Wsd, 1e-3, 0, 333, 0, 0.05, 0, 0.2);
  EXPECT_EQ(s.warmup, 17);
  EXPECT_EQ(s.decay, 67);  // ceil(66.6)
  EXPECT_EQ(s.hold, 333 - 17 - 67);
  expect_every_step(s, 17, 333 - 17 - 67, 67, 333, "wsd from ratios");
  EXPECT_NEAR(s.at(333), 0.0, kTol);
}

RunConfig parse(std::vector<std::string> args) { return test::parse_args(std::move(args)); }
std::string error_of(std::vector<std::string> args) { return test::parse_error(std::move(args)); }

TEST(LrSchedule, ConfigKeysChooseTheSchedule) {
  RunConfig c = parse({"--optim.schedule=wsd", "--optim.warmup_ratio=0.1", "--optim.decay_ratio=0.2",
                       "--optim.lr=1e-3", "--optim.min_lr=0"});
  EXPECT_EQ(c.optim.schedule, LrScheduleKind::Wsd);
  const LrSchedule s = c.lr_schedule(50);
  EXPECT_EQ(s.warmup, 5);
  EXPECT_EQ(s.decay, 10);
  EXPECT_EQ(s.hold, 35);
  EXPECT_NE(c.to_ini().find("schedule = wsd"), std::string::npos);
  EXPECT_EQ(parse({}).optim.schedule, LrScheduleKind::Cosine);  // the default is today's schedule
  EXPECT_EQ(parse({"--optim.schedule=linear"}).optim.schedule, LrScheduleKind::Linear);
  EXPECT_EQ(parse({"--optim.schedule=constant"}).optim.schedule, LrScheduleKind::Constant);
}

TEST(LrSchedule, BadKeysAreNamed) {
  std::string msg = error_of({"--optim.schedule=cosine_with_restarts"});
  EXPECT_NE(msg.find("optim.schedule must be cosine, linear, constant or wsd"), std::string::npos) << msg;
  msg = error_of({"--optim.warmup_steps=5", "--optim.warmup_ratio=0.1"});
  EXPECT_NE(msg.find("optim.warmup_steps and optim.warmup_ratio are both given"), std::string::npos) << msg;
  msg = error_of({"--optim.decay_steps=5", "--optim.decay_ratio=0.1"});
  EXPECT_NE(msg.find("optim.decay_steps and optim.decay_ratio"), std::string::npos) << msg;
  // to_ini writes the key a ratio replaces as a comment, so its output parses again.
  const std::string ini = parse({"--optim.warmup_ratio=0.1", "--optim.decay_steps=7"}).to_ini();
  EXPECT_NE(ini.find("# warmup_steps = 10  (from optim.warmup_ratio)"), std::string::npos) << ini;
  EXPECT_NE(ini.find("# decay_ratio = 0.1  (from optim.decay_steps)"), std::string::npos) << ini;
  RunConfig c = parse({"--model.config=m.json", "--data.path=d", "--optim.warmup_ratio=1.5"});
  try {
    c.validate();
    FAIL() << "warmup_ratio 1.5 accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("optim.warmup_ratio must be in [0, 1)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace iris
