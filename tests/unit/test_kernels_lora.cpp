// LoRA linear ops on the CPU (src/kernels/cpu/lora.h): gradients of dA, dB and dx against central finite
// differences of L = Σ out ⊙ G, with and without dropout, plus PEFT's initialisation and scaling. L is
// linear in each of A, B and x, so the differences are exact up to fp32 rounding: tolerance 2e-3 abs +
// 2e-3 rel on gradients of magnitude ~1 (differences taken in double over fp32 forwards).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "src/core/error.h"
#include "src/kernels/cpu/lora.h"

namespace iris::cpu {
namespace {

struct Case {
  int N = 5, IC = 12, OC = 7, R = 3;
  float p = 0;
};

std::vector<float> randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

class LoraGrad : public ::testing::TestWithParam<Case> {};

TEST_P(LoraGrad, BackwardMatchesFiniteDifferences) {
  const Case c = GetParam();
  std::mt19937 rng(7);
  std::vector<float> x = randn(c.N * c.IC, rng), W0 = randn(c.OC * c.IC, rng), A = randn(c.R * c.IC, rng),
                     B = randn(c.OC * c.R, rng), G = randn(c.N * c.OC, rng);
  const float scale = lora_scale(16.0f, c.R, false);
  const LoraDropout dropout{c.p, 3, 11};
  auto loss = [&]() {
    std::vector<float> xd(x.size()), xa(c.N * c.R), out(c.N * c.OC);
    lora_dropout(xd.data(), x.data(), dropout, c.N, c.IC);
    lora_linear_forward(out.data(), xa.data(), x.data(), xd.data(), W0.data(), A.data(), B.data(), scale, c.N, c.IC,
                        c.OC, c.R);
    double l = 0;
    for (size_t i = 0; i < out.size(); ++i) l += static_cast<double>(out[i]) * G[i];
    return l;
  };
  std::vector<float> xd(x.size()), xa(c.N * c.R), out(c.N * c.OC), scratch(c.N * c.R);
  lora_dropout(xd.data(), x.data(), dropout, c.N, c.IC);
  lora_linear_forward(out.data(), xa.data(), x.data(), xd.data(), W0.data(), A.data(), B.data(), scale, c.N, c.IC,
                      c.OC, c.R);
  std::vector<float> dx(x.size(), 99.0f), dA(A.size(), 0.5f), dB(B.size(), -0.25f);  // dA, dB accumulate
  lora_linear_backward(dx.data(), dA.data(), dB.data(), scratch.data(), G.data(), xd.data(), xa.data(), W0.data(),
                       A.data(), B.data(), scale, dropout, c.N, c.IC, c.OC, c.R);
  auto check = [&](std::vector<float>& param, const std::vector<float>& grad, float prior, const char* what) {
    for (size_t i = 0; i < param.size(); ++i) {
      const float keep = param[i], eps = 0.125f;
      param[i] = keep + eps;
      const double up = loss();
      param[i] = keep - eps;
      const double down = loss();
      param[i] = keep;
      const double fd = (up - down) / (2.0 * eps), got = grad[i] - prior;
      EXPECT_NEAR(got, fd, 2e-3 + 2e-3 * std::fabs(fd)) << what << "[" << i << "]";
    }
  };
  check(A, dA, 0.5f, "dA");
  check(B, dB, -0.25f, "dB");
  check(x, dx, 0.0f, "dx");
}

INSTANTIATE_TEST_SUITE_P(Shapes, LoraGrad,
                         ::testing::Values(Case{}, Case{5, 12, 7, 3, 0.3f}, Case{1, 16, 16, 1, 0.0f},
                                           Case{9, 8, 20, 8, 0.5f}));

TEST(Lora, ZeroBLeavesTheBaseLayerAndDropoutKeepsAboutOneMinusP) {
  const int N = 4, IC = 64, OC = 32, R = 8;
  std::mt19937 rng(1);
  std::vector<float> x = randn(N * IC, rng), W0 = randn(OC * IC, rng), A(R * IC), B(OC * R, 1.0f);
  lora_init(A.data(), B.data(), 42, "layers.0.q_proj", IC, OC, R);
  for (float b : B) EXPECT_EQ(b, 0.0f);
  std::vector<float> out(N * OC), base(N * OC), xa(N * R), zero(OC * R, 0.0f), xd(N * IC);
  lora_linear_forward(out.data(), xa.data(), x.data(), x.data(), W0.data(), A.data(), B.data(), 2.0f, N, IC, OC, R);
  lora_linear_forward(base.data(), xa.data(), x.data(), x.data(), W0.data(), A.data(), zero.data(), 0.0f, N, IC, OC,
                      R);
  EXPECT_EQ(out, base);
  std::vector<float> ones(100000, 1.0f), dropped(ones.size());
  lora_dropout(dropped.data(), ones.data(), LoraDropout{0.25f, 5, 6}, 1, static_cast<int>(ones.size()));
  size_t kept = 0;
  for (float v : dropped) {
    EXPECT_TRUE(v == 0.0f || std::fabs(v - 4.0f / 3.0f) < 1e-6f);
    kept += v != 0.0f;
  }
  EXPECT_NEAR(static_cast<double>(kept) / ones.size(), 0.75, 0.01);  // binomial sd 0.0014
}

TEST(Lora, InitIsPeftsKaimingUniformAndDependsOnlyOnSeedAndName) {
  const int IC = 256, OC = 8, R = 64;
  std::vector<float> A(R * IC), A2(R * IC), A3(R * IC), B(OC * R);
  lora_init(A.data(), B.data(), 42, "layers.3.v_proj", IC, OC, R);
  lora_init(A2.data(), B.data(), 42, "layers.3.v_proj", IC, OC, R);
  lora_init(A3.data(), B.data(), 42, "layers.3.q_proj", IC, OC, R);
  EXPECT_EQ(A, A2);
  EXPECT_NE(A, A3);
  const float bound = 1.0f / 16.0f;  // 1/√IC
  double sum = 0, sq = 0, max = 0;
  for (float a : A) {
    EXPECT_LE(std::fabs(a), bound);
    sum += a;
    sq += static_cast<double>(a) * a;
    max = std::max(max, static_cast<double>(std::fabs(a)));
  }
  EXPECT_NEAR(sum / A.size(), 0.0, 3e-3 * bound * 4);       // sd of the mean: bound/√(3·16384) ≈ 0.0045·bound
  EXPECT_NEAR(sq / A.size(), bound * bound / 3.0, 0.03 * bound * bound / 3.0);  // U(−b, b) variance b²/3
  EXPECT_GT(max, 0.99 * bound);
}

TEST(Lora, ScaleIsAlphaOverROrOverSqrtRAndRefusesRankZero) {
  EXPECT_FLOAT_EQ(lora_scale(32.0f, 16, false), 2.0f);
  EXPECT_FLOAT_EQ(lora_scale(32.0f, 16, true), 8.0f);
  EXPECT_THROW(lora_scale(16.0f, 0, false), UserError);
}

}  // namespace
}  // namespace iris::cpu
