// GPU decode attention (src/kernels/cuda/decode_attention.cu) against the CPU op (src/kernels/cpu/
// decode_attention.cpp) on seeded random bf16 data: a batch of sequences of different lengths (1, 7, 130, 1000
// positions of a 1024-position cache; the cache past each length holds large garbage, so a mask error shows),
// HS {64, 128}, NH/NKV {1, 4, 8}. The reference gets the same bf16 values widened to fp32. Tolerance per
// element (bf16 output): atol 1e-2 + rtol 1.6e-2·|ref| (kBf16Out, tests/gpu/gpu_test_util.h).
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "src/kernels/cpu/decode_attention.h"
#include "src/kernels/cuda/decode_attention.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace {

using namespace iris::test;
using bf16 = __nv_bfloat16;

struct DecodeCase {
  int NH, NKV, HS;
};

class GpuDecodeAttention : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(GpuDecodeAttention, MatchesTheCpuOp) {
  IRIS_REQUIRE_GPU();
  const auto [NH, NKV, HS] = GetParam();
  const std::vector<int32_t> lengths = {1, 7, 130, 1000};
  const int B = static_cast<int>(lengths.size()), T_max = 1024;
  std::mt19937 rng(1000u * NH + 10u * NKV + HS);
  Bf16Data q = random_bf16(static_cast<size_t>(B) * NH * HS, rng, 1.0f);
  Bf16Data k = random_bf16(static_cast<size_t>(B) * NKV * T_max * HS, rng, 1.0f);
  Bf16Data v = random_bf16(k.values.size(), rng, 1.0f);
  for (int b = 0; b < B; ++b)  // garbage past each sequence's length
    for (int h = 0; h < NKV; ++h)
      for (int t = lengths[b]; t < T_max; ++t)
        for (int d = 0; d < HS; ++d) {
          const size_t i = ((static_cast<size_t>(b) * NKV + h) * T_max + t) * HS + d;
          k.bits[i] = __float2bfloat16(64.0f);
          v.bits[i] = __float2bfloat16(-1000.0f);
          k.values[i] = 64.0f;
          v.values[i] = -1000.0f;
        }
  std::vector<float> ref(q.values.size());
  iris::cpu::decode_attention_forward(ref.data(), q.values.data(), k.values.data(), v.values.data(), nullptr,
                                      lengths.data(), B, NH, NKV, HS, T_max);
  DeviceBuffer<bf16> dq(q.bits), dk(k.bits), dv(v.bits), dout(q.bits.size());
  DeviceBuffer<int32_t> dlen(lengths);
  iris::cuda::decode_attention_forward(dout.get(), dq.get(), dk.get(), dv.get(), nullptr, dlen.get(), B, NH, NKV, HS,
                                       T_max, nullptr);
  EXPECT_TRUE(all_close("decode_attention NH=" + std::to_string(NH) + " NKV=" + std::to_string(NKV) +
                            " HS=" + std::to_string(HS),
                        download_as_float(dout), ref, kBf16Out.atol, kBf16Out.rtol));
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuDecodeAttention,
                         ::testing::Values(DecodeCase{2, 2, 64}, DecodeCase{8, 2, 64}, DecodeCase{16, 2, 64},
                                           DecodeCase{2, 2, 128}, DecodeCase{8, 2, 128}, DecodeCase{16, 2, 128}),
                         [](const ::testing::TestParamInfo<DecodeCase>& info) {
                           return "NH" + std::to_string(info.param.NH) + "_NKV" + std::to_string(info.param.NKV) +
                                  "_HS" + std::to_string(info.param.HS);
                         });

}  // namespace
