// Whole-model gradient check: every element of every parameter's gradient of a tiny Llama against
// central finite differences of the loss. The model runs in fp32, which rules out small steps, so the
// derivative is Richardson-extrapolated from central differences at h = 1e-2 and h/2:
// D = (4·D(h/2) − D(h)) / 3, truncation O(h⁴); fp32 rounding of a loss near 5 is ~5e-7 / h ≈ 5e-5
// absolute per element. Tolerance per tensor: ‖g − g_fd‖₂ ≤ 1e-3 · ‖g_fd‖₂ + 1e-4 · sqrt(n).
#include <gtest/gtest.h>

#include <cmath>

#include "src/core/rng.h"
#include "src/model/llama.h"

namespace iris {
namespace {

LlamaConfig tiny_config(bool tied, bool llama3_rope) {
  nlohmann::json j = {{"hidden_size", 16},         {"intermediate_size", 24}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},   {"num_key_value_heads", 2}, {"vocab_size", 29},
                      {"rms_norm_eps", 1e-5},       {"rope_theta", 10000.0},   {"tie_word_embeddings", tied},
                      {"initializer_range", 0.3},   {"model_type", "llama"}};
  if (llama3_rope)
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 4}};
  return LlamaConfig::from_json(j, "tiny");
}

struct Case { bool tied; bool llama3; };

class GradCheck : public ::testing::TestWithParam<Case> {};

TEST_P(GradCheck, EveryParameterMatchesFiniteDifferences) {
  const auto [tied, llama3] = GetParam();
  const LlamaConfig config = tiny_config(tied, llama3);
  const Topology topo = Topology::make(1, 0, 1, 1);
  const StageLayers layers = stage_layers(config.num_hidden_layers, 1, 0);
  const ParamTable table = ParamTable::build(config, topo, layers);
  const int B = 2, T = 5, N = B * T;
  LlamaStage stage(config, topo, table, layers, B, T, nullptr);
  auto acts = stage.make_activations();

  std::vector<float> params(table.total_numel());
  table.initialize(params.data(), 7);
  // Norm weights away from 1 so the weight path of RMSNorm is exercised.
  for (const auto& e : table.entries())
    if (e.init_std == 0.0)
      for (size_t i = 0; i < e.numel; ++i) params[e.offset + i] = 1.0f + 0.2f * static_cast<float>(random_normal(3, 9, e.offset + i));
  std::vector<int32_t> tokens(N), targets(N);
  std::vector<float> weight(N);
  for (int i = 0; i < N; ++i) {
    tokens[i] = static_cast<int32_t>(random_u64(11, 1, i) % config.vocab_size);
    targets[i] = static_cast<int32_t>(random_u64(11, 2, i) % config.vocab_size);
    weight[i] = (i % 4 == 3) ? 0.0f : 1.0f;  // some tokens masked out of the loss
  }
  float trained = 0;
  for (float w : weight) trained += w;
  for (float& w : weight) w /= trained;
  MicroBatch mb{tokens.data(), targets.data(), weight.data(), nullptr, nullptr};

  std::vector<float> grads(table.total_numel(), 0.0f);
  stage.forward(*acts, params.data(), mb, nullptr);
  stage.backward(*acts, params.data(), grads.data(), mb, nullptr, nullptr);

  const float h = 1e-2f;
  for (const auto& e : table.entries()) {
    double err2 = 0, ref2 = 0;
    for (size_t i = 0; i < e.numel; ++i) {
      float& p = params[e.offset + i];
      const float saved = p;
      auto central = [&](float step) {
        p = saved + step;
        const double up = stage.forward(*acts, params.data(), mb, nullptr);
        p = saved - step;
        const double down = stage.forward(*acts, params.data(), mb, nullptr);
        p = saved;
        return (up - down) / (static_cast<double>(saved + step) - static_cast<double>(saved - step));
      };
      const double fd = (4.0 * central(h / 2) - central(h)) / 3.0;
      const double d = grads[e.offset + i] - fd;
      err2 += d * d;
      ref2 += fd * fd;
    }
    const double err = std::sqrt(err2), ref = std::sqrt(ref2);
    EXPECT_LE(err, 1e-3 * ref + 1e-4 * std::sqrt(static_cast<double>(e.numel)))
        << e.name << ": |g - fd| = " << err << ", |fd| = " << ref;
    EXPECT_GT(ref, 0.0) << e.name << " has an all-zero finite-difference gradient; the check would be vacuous";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GradCheck,
                         ::testing::Values(Case{false, false}, Case{true, false}, Case{false, true}),
                         [](const auto& info) {
                           return std::string(info.param.tied ? "tied" : "untied") + (info.param.llama3 ? "_llama3_rope" : "");
                         });

// Gradients accumulate over micro-batches: two backward passes give twice the gradient.
TEST(GradAccumulation, BackwardAddsIntoParameterGradients) {
  const LlamaConfig config = tiny_config(false, false);
  const Topology topo = Topology::make(1, 0, 1, 1);
  const StageLayers layers = stage_layers(config.num_hidden_layers, 1, 0);
  const ParamTable table = ParamTable::build(config, topo, layers);
  LlamaStage stage(config, topo, table, layers, 1, 4, nullptr);
  auto acts = stage.make_activations();
  std::vector<float> params(table.total_numel());
  table.initialize(params.data(), 1);
  std::vector<int32_t> tokens = {1, 5, 7, 2}, targets = {5, 7, 2, 9};
  std::vector<float> w(4, 0.25f);
  MicroBatch mb{tokens.data(), targets.data(), w.data(), nullptr, nullptr};
  std::vector<float> once(params.size(), 0.0f), twice(params.size(), 0.0f);
  stage.forward(*acts, params.data(), mb, nullptr);
  stage.backward(*acts, params.data(), once.data(), mb, nullptr, nullptr);
  for (int r = 0; r < 2; ++r) {
    stage.forward(*acts, params.data(), mb, nullptr);
    stage.backward(*acts, params.data(), twice.data(), mb, nullptr, nullptr);
  }
  for (size_t i = 0; i < params.size(); ++i) ASSERT_NEAR(twice[i], 2 * once[i], 1e-6 + 1e-5 * std::fabs(once[i])) << i;
}

}  // namespace
}  // namespace iris
