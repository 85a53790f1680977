// Sampling: the warpers' edge cases (top-k keeps ties with the k-th, top-p keeps the most likely token,
// greedy takes the first maximum), the counter-based draws are reproducible, and many seeded draws follow
// the distribution: Pearson's chi-square over the kept tokens below the 0.999 quantile of χ²(df) (a wrong
// warper, checked as a negative control, lands far above it). Equality with HF's warpers themselves is
// tests/hf/test_hf_generate.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "src/infer/sampling.h"

namespace iris::infer {
namespace {

TEST(InferSampling, GreedyTakesTheFirstMaximum) {
  const float logits[] = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(argmax_token(logits, 4), 1);
}

TEST(InferSampling, TopKKeepsTiesWithTheKthAndTopPKeepsTheMostLikely) {
  const float logits[] = {1.0f, 3.0f, 2.0f, 2.0f, 0.0f};
  std::vector<double> scratch;
  std::vector<float> p(5);
  sampling_probabilities(p.data(), logits, 5, {false, 1.0f, 2, 1.0f, 0}, scratch);
  EXPECT_EQ(p[0], 0.0f);
  EXPECT_EQ(p[4], 0.0f);
  EXPECT_GT(p[2], 0.0f);  // tied with the 2nd largest: kept, as TopKLogitsWarper does
  EXPECT_EQ(p[2], p[3]);
  EXPECT_NEAR(p[1] + p[2] + p[3], 1.0, 1e-6);
  sampling_probabilities(p.data(), logits, 5, {false, 1.0f, 0, 1e-6f, 0}, scratch);
  EXPECT_EQ(p[1], 1.0f);  // top_p → 0 still keeps the most likely token
}

TEST(InferSampling, QuantileNeverPicksARemovedToken) {
  const float probs[] = {0.0f, 0.5f, 0.0f, 0.5f, 0.0f};
  EXPECT_EQ(token_at_quantile(probs, 5, 1e-9), 1);
  EXPECT_EQ(token_at_quantile(probs, 5, 0.75), 3);
  EXPECT_EQ(token_at_quantile(probs, 5, 1.0 - 1e-12), 3);
}

// χ²(df) 0.999 quantiles, df = 1..11 (standard tables).
constexpr double kChiSquare999[] = {10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59, 31.26};

// Pearson's statistic of `counts` against `probs` over the tokens with probs > 0; -1 if a token of probability
// 0 was drawn. df = kept − 1.
double chi_square(const std::vector<int>& counts, const std::vector<float>& probs, int n, int& df) {
  double x2 = 0.0;
  df = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0.0f) {
      if (counts[i] > 0) return -1.0;
      continue;
    }
    const double e = double(probs[i]) * n;
    x2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  return x2;
}

TEST(InferSampling, SeededDrawsFollowTheWarpedDistribution) {
  const std::vector<float> logits = {0.3f, 1.9f, -0.4f, 1.2f, 0.8f, -2.0f, 1.5f, 0.1f, -1.1f, 2.2f, 0.6f, -0.2f};
  const int V = static_cast<int>(logits.size()), n = 200000;
  const SamplingSettings s{false, 0.8f, 8, 0.95f, 99};
  std::vector<double> scratch;
  std::vector<float> probs(V), scratch_probs;
  sampling_probabilities(probs.data(), logits.data(), V, s, scratch);
  std::vector<int> counts(V, 0);
  const uint64_t stream = prompt_stream("chi-square");
  for (int i = 0; i < n; ++i) ++counts[choose_token(logits.data(), V, s, stream, i, scratch, scratch_probs)];
  int df = 0;
  const double x2 = chi_square(counts, probs, n, df);
  ASSERT_GE(df, 3) << "the case should keep several tokens";
  ASSERT_LE(df, 11);
  EXPECT_GE(x2, 0.0) << "a token the warpers removed was drawn";
  EXPECT_LT(x2, kChiSquare999[df - 1]) << "chi-square " << x2 << " with " << df << " degrees of freedom";

  // Negative control: the same draws against the distribution without top-p do not pass.
  std::vector<float> no_top_p(V);
  sampling_probabilities(no_top_p.data(), logits.data(), V, {false, 0.8f, 8, 1.0f, 0}, scratch);
  int df2 = 0;
  const double wrong = chi_square(counts, no_top_p, n, df2);
  EXPECT_TRUE(wrong < 0.0 || wrong > kChiSquare999[df2 - 1]) << "the test cannot tell top-p from none";

  // Reproducible: the same (seed, stream, position) gives the same token.
  EXPECT_EQ(choose_token(logits.data(), V, s, stream, 17, scratch, scratch_probs),
            choose_token(logits.data(), V, s, stream, 17, scratch, scratch_probs));
}

}  // namespace
}  // namespace iris::infer
