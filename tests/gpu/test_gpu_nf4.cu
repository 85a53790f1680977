// GPU NF4 dequantization (src/kernels/cuda/nf4.cu) against the CPU op (cpu::nf4_dequantize) on tensors the
// CPU quantizer made from seeded normal weights, sizes around the 64-weight and 16384-weight (nested) block
// edges, with an all-zero block. Tolerance: none — fp32 output bit-identical, bf16 output bit-identical to
// the round-to-nearest-even bf16 of the CPU's fp32.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "src/kernels/cpu/quantize.h"
#include "src/kernels/cuda/nf4.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace {

using namespace iris::test;
using bf16 = __nv_bfloat16;

class GpuNf4 : public ::testing::TestWithParam<size_t> {};

TEST_P(GpuNf4, DequantizationEqualsTheCpuOpBitForBit) {
  IRIS_REQUIRE_GPU();
  const size_t n = GetParam();
  std::mt19937 rng(static_cast<unsigned>(n));
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(n);
  for (float& x : w) x = normal(rng);
  if (n >= 192) std::fill(w.begin() + 64, w.begin() + 128, 0.0f);  // an all-zero block
  const iris::cpu::Nf4Tensor q = iris::cpu::nf4_quantize(w.data(), n);
  std::vector<float> ref(n);
  iris::cpu::nf4_dequantize(ref.data(), q);

  DeviceBuffer<uint8_t> packed(q.packed), codes(q.absmax_code);
  DeviceBuffer<float> nested(q.nested_absmax), out32(n);
  DeviceBuffer<bf16> out16(n);
  const float* nf4 = iris::cpu::nf4_code().data();
  const float* dyn = iris::cpu::dynamic_map_code().data();
  iris::cuda::nf4_dequantize(out32.get(), packed.get(), codes.get(), nested.get(), q.offset, nf4, dyn, n, nullptr);
  iris::cuda::nf4_dequantize(out16.get(), packed.get(), codes.get(), nested.get(), q.offset, nf4, dyn, n, nullptr);
  const std::vector<float> got32 = out32.download();
  const std::vector<bf16> got16 = out16.download();
  size_t bad32 = 0, bad16 = 0;
  for (size_t i = 0; i < n; ++i) {
    bad32 += std::memcmp(&got32[i], &ref[i], sizeof(float)) != 0;
    const bf16 want = __float2bfloat16_rn(ref[i]);
    bad16 += std::memcmp(&got16[i], &want, sizeof(bf16)) != 0;
  }
  EXPECT_EQ(bad32, 0u) << "fp32 elements differing from the CPU of " << n;
  EXPECT_EQ(bad16, 0u) << "bf16 elements differing from the CPU's rounded of " << n;
}

INSTANTIATE_TEST_SUITE_P(Sizes, GpuNf4, ::testing::Values(1, 63, 64, 65, 1000, 16384, 16384 * 3 + 77, 4096 * 4096));

}  // namespace
