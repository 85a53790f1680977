// NF4 and int8 quantization on the CPU: the code books, bitsandbytes' packing order and thresholds, the
// double-quantized statistics and round-trip error bounds (bit-identity against the reference
// implementation of bitsandbytes is tests/hf/test_hf_nf4.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "src/core/error.h"
#include "src/kernels/cpu/quantize.h"

namespace iris::cpu {
namespace {

TEST(Nf4, CodeBookIsSortedSymmetricEnds) {
  const auto& c = nf4_code();
  EXPECT_EQ(c[0], -1.0f);
  EXPECT_EQ(c[7], 0.0f);
  EXPECT_EQ(c[15], 1.0f);
  for (int i = 0; i < 15; ++i) EXPECT_LT(c[i], c[i + 1]);
}

TEST(Nf4, DynamicMapHas256SortedValuesWithZeroAndOne) {
  const auto& d = dynamic_map_code();
  EXPECT_EQ(d[255], 1.0f);
  EXPECT_NEAR(d[0], -0.9928, 1e-3);  // −10^0 · (midpoint of the last two of linspace(0.1, 1, 65))
  for (int i = 0; i < 255; ++i) EXPECT_LE(d[i], d[i + 1]);
  int zeros = 0;
  for (float v : d) zeros += v == 0.0f;
  EXPECT_EQ(zeros, 1);
}

TEST(Nf4, PacksHighNibbleFirstAndCodesExactValues) {
  // A block whose absmax is 2: x / 2 lands exactly on code values, so the codes are known.
  const auto& c = nf4_code();
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = 2.0f * c[i % 16];
  const Nf4Tensor q = nf4_quantize(x.data(), x.size());
  ASSERT_EQ(q.packed.size(), 32u);
  EXPECT_EQ(q.packed[0], 0x01);  // element 0 → code 0 (high nibble), element 1 → code 1 (low)
  EXPECT_EQ(q.packed[7], 0xEF);
  ASSERT_EQ(q.absmax_code.size(), 1u);
  ASSERT_EQ(q.nested_absmax.size(), 1u);
  EXPECT_EQ(q.offset, 2.0f);  // one block: the mean is its absmax, the nested value 0 → code of 0
  std::vector<float> y(64);
  nf4_dequantize(y.data(), q);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(y[i], x[i]) << i;
}

TEST(Nf4, RoundTripErrorWithinHalfTheLargestCodeGap) {
  // Random normal weights, 3 nested groups (n = 64 · 600): each element is within half the largest
  // NF4 gap (−0.6962 − (−1) = 0.304 of the block absmax) plus the nested quantization's absmax error (< 1%).
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> x(64 * 600 + 5);
  for (float& v : x) v = normal(gen);
  const Nf4Tensor q = nf4_quantize(x.data(), x.size());
  EXPECT_EQ(q.absmax_code.size(), 601u);
  EXPECT_EQ(q.nested_absmax.size(), 3u);
  std::vector<float> y(x.size());
  nf4_dequantize(y.data(), q);
  const std::vector<float> absmax = nf4_absmax(q);
  float max_gap = 0;
  for (int c = 0; c < 15; ++c) max_gap = std::max(max_gap, nf4_code()[c + 1] - nf4_code()[c]);
  EXPECT_NEAR(max_gap, 0.3038f, 1e-4);
  for (size_t i = 0; i < x.size(); ++i) {
    float block = 0;
    const size_t begin = i / 64 * 64, end = std::min(x.size(), begin + 64);
    for (size_t j = begin; j < end; ++j) block = std::max(block, std::fabs(x[j]));
    EXPECT_NEAR(absmax[i / 64], block, 0.01f * block) << i;
    EXPECT_NEAR(y[i], x[i], 0.5f * max_gap * block + 0.01f * block) << i;
  }
  EXPECT_EQ(nf4_bytes(x.size()), q.bytes());
  EXPECT_NEAR(8.0 * nf4_bytes(1 << 24) / (1 << 24), 4.127, 0.001);  // bits per weight
}

TEST(Int8, PerRowAbsmaxRoundTrip) {
  const std::vector<float> w = {1.0f, -0.5f, 0.25f, 0.0f, 0.0f, 0.0f, -3.0f, 1.5f};
  const Int8Tensor q = int8_quantize(w.data(), 2, 4);
  EXPECT_EQ(q.q[0], 127);
  EXPECT_EQ(q.q[6], -127);
  EXPECT_EQ(q.q[1], -64);  // round(−63.5) = −64 (ties to even)
  std::vector<float> y(8);
  int8_dequantize(y.data(), q);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(y[i], w[i], 0.5f * (i < 4 ? 1.0f : 3.0f) / 127) << i;
}

TEST(Quantize, ParseNamesTheKey) {
  EXPECT_EQ(parse_quantize("nf4", "model.quantize"), Quantize::Nf4);
  try {
    parse_quantize("fp4", "model.quantize");
    FAIL() << "fp4 accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.quantize"), std::string::npos);
  }
}

}  // namespace
}  // namespace iris::cpu
