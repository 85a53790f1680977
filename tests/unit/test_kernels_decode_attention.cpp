// decode_attention_forward (one query per sequence over its KV cache) against a double-precision softmax
// attention of the same query, and against the last row of the training kernel's causal attention_forward of
// the whole sequence: a batch of sequences of different lengths, each slot's cache past its length filled
// with large garbage (a mask error or cross-talk would show at 1e-1, not 1e-5). Shapes sweep MHA and GQA.
// Tolerance: kFp32 (atol 1e-5 + rtol 1e-4·|ref|, see kernels_test_util.h).
#include <gtest/gtest.h>

#include <cmath>

#include "src/kernels/cpu/decode_attention.h"
#include "src/kernels/cpu/ops.h"
#include "tests/unit/kernels_test_util.h"

namespace iris::cpu {
namespace {

struct Shape {
  int NH, NKV, HS;
};

class DecodeAttention : public ::testing::TestWithParam<Shape> {};

TEST_P(DecodeAttention, EachSequenceSeesOnlyItsOwnCache) {
  const auto [NH, NKV, HS] = GetParam();
  const int lengths[] = {1, 7, 33, 64};
  const int B = 4, T_max = 70;
  const size_t slot = static_cast<size_t>(NKV) * T_max * HS;
  std::vector<float> k_cache(B * slot, 1e3f), v_cache(B * slot, -1e3f);  // garbage past each length
  std::vector<float> q(static_cast<size_t>(B) * NH * HS), out(q.size());
  std::vector<double> expected(q.size());
  std::vector<float> last_row_of_full(q.size());
  for (int b = 0; b < B; ++b) {
    const int T = lengths[b];
    // The whole sequence as the training kernel sees it: q, k, v (1, T, heads, HS).
    const auto qs = test::random_floats(static_cast<size_t>(T) * NH * HS, 10 + b);
    const auto ks = test::random_floats(static_cast<size_t>(T) * NKV * HS, 20 + b);
    const auto vs = test::random_floats(static_cast<size_t>(T) * NKV * HS, 30 + b);
    std::vector<float> full(qs.size()), lse(static_cast<size_t>(NH) * T);
    attention_forward(full.data(), lse.data(), qs.data(), ks.data(), vs.data(), nullptr, 1, T, NH, NKV, HS);
    const size_t last = static_cast<size_t>(T - 1) * NH * HS;
    std::copy(qs.begin() + last, qs.begin() + last + NH * HS, q.begin() + b * NH * HS);
    std::copy(full.begin() + last, full.begin() + last + NH * HS, last_row_of_full.begin() + b * NH * HS);
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < NKV; ++h)
        for (int d = 0; d < HS; ++d) {
          const size_t src = (static_cast<size_t>(t) * NKV + h) * HS + d;
          const size_t dst = b * slot + (static_cast<size_t>(h) * T_max + t) * HS + d;
          k_cache[dst] = ks[src];
          v_cache[dst] = vs[src];
        }
    for (int h = 0; h < NH; ++h) {  // double-precision reference of the last query
      const int g = h / (NH / NKV);
      std::vector<double> s(T);
      double m = -INFINITY, sum = 0.0;
      for (int j = 0; j < T; ++j) {
        s[j] = 0.0;
        for (int d = 0; d < HS; ++d) s[j] += double(qs[last + h * HS + d]) * ks[(size_t(j) * NKV + g) * HS + d];
        s[j] /= std::sqrt(double(HS));
        m = std::max(m, s[j]);
      }
      for (int j = 0; j < T; ++j) sum += (s[j] = std::exp(s[j] - m));
      for (int d = 0; d < HS; ++d) {
        double o = 0.0;
        for (int j = 0; j < T; ++j) o += s[j] / sum * vs[(size_t(j) * NKV + g) * HS + d];
        expected[(size_t(b) * NH + h) * HS + d] = o;
      }
    }
  }
  std::vector<int32_t> len(lengths, lengths + B);
  decode_attention_forward(out.data(), q.data(), k_cache.data(), v_cache.data(), nullptr, len.data(), B, NH, NKV, HS,
                           T_max);
  EXPECT_TRUE(test::all_close(out, expected, test::kFp32));
  // The same rows naming their cache slots explicitly, in reverse order (row r reads slot B-1-r).
  std::vector<int32_t> reversed_slot(B), reversed_len(B);
  std::vector<float> reversed_q(q.size()), reversed_out(q.size());
  for (int r = 0; r < B; ++r) {
    reversed_slot[r] = B - 1 - r;
    reversed_len[r] = len[B - 1 - r];
    std::copy_n(q.begin() + size_t(B - 1 - r) * NH * HS, NH * HS, reversed_q.begin() + size_t(r) * NH * HS);
  }
  decode_attention_forward(reversed_out.data(), reversed_q.data(), k_cache.data(), v_cache.data(), reversed_slot.data(),
                           reversed_len.data(), B, NH, NKV, HS, T_max);
  for (int r = 0; r < B; ++r)
    EXPECT_TRUE(std::equal(reversed_out.begin() + size_t(r) * NH * HS, reversed_out.begin() + size_t(r + 1) * NH * HS,
                           out.begin() + size_t(B - 1 - r) * NH * HS)) << "row " << r;
  EXPECT_TRUE(test::all_close(out, expected, test::kFp32));
  EXPECT_TRUE(test::all_close(out, test::to_double(last_row_of_full), test::kFp32));
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecodeAttention,
                         ::testing::Values(Shape{4, 4, 16}, Shape{4, 2, 16}, Shape{8, 1, 32}, Shape{6, 3, 64}));

}  // namespace
}  // namespace iris::cpu
