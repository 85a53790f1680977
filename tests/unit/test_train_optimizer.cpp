// The pieces of the optimizer step that do not need the trainer: the cosine schedule with linear
// warm-up to min_lr (against values worked out by hand), no weight decay on 1-D parameters, and that
// the clipping factor (grad_scale = grad_clip / global norm, src/train/trainer.cpp) scales the
// gradient before it enters Adam's moments.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "src/model/param_table.h"
#include "src/train/lr_schedule.h"
#include "src/train/optimizer.h"

namespace iris {
namespace {

// lr 1e-3 → min_lr 1e-4, 10 warm-up steps, then 100 steps of cosine decay (steps are 1-based).
TEST(CosineSchedule, WarmupCosineAndFloor) {
  const LrSchedule s{1e-3, 1e-4, 10, 100};
  const double tol = 1e-15;  // plain double arithmetic
  EXPECT_NEAR(s.at(1), 1e-4, tol);     // 1e-3 · 1/10
  EXPECT_NEAR(s.at(5), 5e-4, tol);     // 1e-3 · 5/10
  EXPECT_NEAR(s.at(10), 1e-3, tol);    // the peak at the end of warm-up
  // t = step − warm-up; lr(t) = min + ½(lr − min)(1 + cos(π t / decay)).
  EXPECT_NEAR(s.at(35), 1e-4 + 0.5 * 9e-4 * (1 + 0.70710678118654752), tol);  // t = 25: cos(π/4)
  EXPECT_NEAR(s.at(35), 8.6819805153394637e-4, tol);
  EXPECT_NEAR(s.at(60), 5.5e-4, tol);  // t = 50: halfway, cos(π/2) = 0
  EXPECT_NEAR(s.at(85), 1e-4 + 0.5 * 9e-4 * (1 - 0.70710678118654752), tol);  // t = 75: cos(3π/4)
  EXPECT_NEAR(s.at(110), 1e-4, tol);   // t = decay: the floor
  EXPECT_EQ(s.at(111), 1e-4);          // and it stays there
  EXPECT_EQ(s.at(10000), 1e-4);
  for (int step = 11; step < 110; ++step) EXPECT_LT(s.at(step + 1), s.at(step)) << "not decreasing at " << step;
}

TEST(CosineSchedule, NoWarmupStartsNearThePeak) {
  const LrSchedule s{2e-3, 0.0, 0, 4};
  EXPECT_NEAR(s.at(1), 0.5 * 2e-3 * (1 + 0.70710678118654752), 1e-15);  // t = 1 of 4: cos(π/4)
  EXPECT_NEAR(s.at(2), 1e-3, 1e-15);
  EXPECT_EQ(s.at(4), 0.0);
}

LlamaConfig tiny_config() { return LlamaConfig::load(IRIS_SOURCE_DIR "/configs/models/tiny.json"); }

ParamTable single_rank_table(const LlamaConfig& c) {
  const Topology topo = Topology::make(1, 0, 1, 1);
  return ParamTable::build(c, topo, stage_layers(c.num_hidden_layers, 1, 0));
}

// With zero gradients Adam's step is 0/(0 + eps) = 0, so only decoupled weight decay moves a weight:
// matrices shrink by (1 − lr·wd), 1-D tensors (RMSNorm weights) stay bit-identical.
TEST(AdamW, NoWeightDecayOnOneDimensionalParameters) {
  const LlamaConfig c = tiny_config();
  const ParamTable table = single_rank_table(c);
  std::vector<float> params(table.total_numel()), grads(table.total_numel(), 0.0f);
  table.initialize(params.data(), 7);
  const std::vector<float> before = params;
  AdamW adam(table, AdamWConfig{0.9, 0.95, 1e-8, 0.1}, 0, table.total_numel());
  const double lr = 0.5;
  adam.update(params.data(), grads.data(), lr, 1, 1.0f);
  int one_d = 0, two_d = 0;
  for (const auto& e : table.entries()) {
    EXPECT_EQ(e.weight_decay, e.global_shape.size() >= 2) << e.name;
    (e.global_shape.size() == 1 ? one_d : two_d)++;
    for (size_t i = e.offset; i < e.offset + e.numel; ++i) {
      if (e.global_shape.size() == 1) {
        ASSERT_EQ(params[i], before[i]) << e.name << " decayed at element " << i - e.offset;
      } else {
        ASSERT_FLOAT_EQ(params[i], before[i] * static_cast<float>(1 - lr * 0.1)) << e.name;
      }
    }
  }
  EXPECT_EQ(one_d, 2 * c.num_hidden_layers + 1);  // two norms per layer + the final norm
  EXPECT_GT(two_d, 0);
}

// Clipping: a gradient of global norm 5 clipped to 1 enters Adam as 0.2·g, so after the first step
// m = (1 − β1)·0.2·g and v = (1 − β2)·(0.2·g)², and the update equals that of a pre-scaled gradient.
TEST(AdamW, GradScaleIsAppliedBeforeTheMoments) {
  const LlamaConfig c = tiny_config();
  const ParamTable table = single_rank_table(c);
  const size_t n = table.total_numel();
  std::vector<float> grads(n);
  for (size_t i = 0; i < n; ++i) grads[i] = static_cast<float>(std::sin(0.37 * i));
  const double norm = std::sqrt(grad_sum_squares(table, grads.data(), 0, n, false));
  for (float& g : grads) g = static_cast<float>(g * 5.0 / norm);  // global norm 5
  const float scale = static_cast<float>(1.0 / 5.0);              // grad_clip 1 / norm 5
  std::vector<float> p_clipped(n), p_prescaled(n), prescaled(n);
  table.initialize(p_clipped.data(), 3);
  p_prescaled = p_clipped;
  for (size_t i = 0; i < n; ++i) prescaled[i] = grads[i] * scale;

  const AdamWConfig cfg{0.9, 0.95, 1e-8, 0.1};
  AdamW clipped(table, cfg, 0, n), reference(table, cfg, 0, n);
  clipped.update(p_clipped.data(), grads.data(), 1e-3, 1, scale);
  reference.update(p_prescaled.data(), prescaled.data(), 1e-3, 1, 1.0f);
  for (size_t i = 0; i < n; i += 97) {
    const float g = grads[i] * scale;
    // (1 − β) in float as the kernel forms it (1 − 0.95f is 0.04999998f); FLOAT_EQ: within 4 ulps.
    ASSERT_FLOAT_EQ(clipped.m()[i], (1.0f - 0.9f) * g) << i;
    ASSERT_FLOAT_EQ(clipped.v()[i], (1.0f - 0.95f) * g * g) << i;
  }
  EXPECT_EQ(p_clipped, p_prescaled);  // same float operations: bit-identical
}

}  // namespace
}  // namespace iris
