// GPU vocab-parallel cross-entropy (src/kernels/cuda/xent.cu) against the CPU phases (src/kernels/cpu/
// cross_entropy.cpp) on seeded random bf16 logits, the reference getting the same values in fp32. Tolerances:
// row max and target logit exact; sumexp atol 1e-6, rtol 1e-4; losses atol 1e-4, rtol 1e-5; bf16 dlogits atol 1e-6,
// rtol 1e-2 (a bf16 rounding is 2^-9 relative), relative L2 1e-2.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "src/kernels/cpu/ops.h"
#include "src/kernels/cuda/xent.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace {

using namespace iris::test;
using bf16 = __nv_bfloat16;

struct XentCase {
  int N, V_local, V_valid, vocab_start;
  std::string name() const {
    return "N=" + std::to_string(N) + " V_local=" + std::to_string(V_local) + " V_valid=" + std::to_string(V_valid) +
           " vocab_start=" + std::to_string(vocab_start);
  }
};

// Row lengths that take the 16-byte path (V_local % 8 == 0) with and without a scalar tail of valid columns,
// the scalar path (V_local odd), a shard of the first rank (vocab_start 0) and later ones.
const XentCase kCases[] = {{1, 8, 8, 0},          {7, 1000, 997, 3000},  {64, 4104, 4100, 4104},
                           {33, 1001, 990, 1001}, {3, 32000, 31999, 0}, {130, 72, 65, 144}};

// Targets of every kind: a valid column of this shard, a padded column, below the shard, above the vocab.
std::vector<int32_t> make_targets(const XentCase& c, std::mt19937& rng) {
  std::vector<int32_t> targets(c.N);
  std::uniform_int_distribution<int> kind(0, 3), column(0, std::max(c.V_valid - 1, 0));
  for (int n = 0; n < c.N; ++n) {
    switch (c.V_valid > 0 ? kind(rng) : 3) {
      case 0: case 1: targets[n] = c.vocab_start + column(rng); break;
      case 2: targets[n] = c.vocab_start + c.V_valid + (c.V_local > c.V_valid ? n % (c.V_local - c.V_valid) : 0); break;
      default: targets[n] = c.vocab_start > 0 ? n % c.vocab_start : c.vocab_start + c.V_local + n; break;
    }
  }
  targets[0] = c.vocab_start + c.V_valid - 1;  // always at least one target on the last valid column
  return targets;
}

void check_xent(const XentCase& c) {
  SCOPED_TRACE(c.name());
  std::printf("%s\n", c.name().c_str());
  std::mt19937 rng(17u * c.N + c.V_local);
  const Bf16Data logits = random_bf16(static_cast<size_t>(c.N) * c.V_local, rng, 3.0f);  // (N, V_local)
  const std::vector<int32_t> targets = make_targets(c, rng);                             // (N,)
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> dloss(c.N), max_global(c.N);  // (N,)
  for (int n = 0; n < c.N; ++n) dloss[n] = n % 5 == 4 ? 0.0f : (0.5f + unit(rng)) / c.N;  // some masked tokens

  // Phase 1.
  std::vector<float> max_ref(c.N);
  iris::cpu::xent_local_max(max_ref.data(), logits.values.data(), c.N, c.V_local, c.V_valid);
  DeviceBuffer<bf16> d_logits(logits.bits);
  DeviceBuffer<float> d_max(c.N);
  iris::cuda::xent_local_max(d_max.get(), d_logits.get(), c.N, c.V_local, c.V_valid, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close("max (fp32, exact)", d_max.download(), max_ref, 0.0, 0.0, 0.0);

  // Phase 2 gets a "global" max above the local one, as after the MAX all-reduce over shards.
  for (int n = 0; n < c.N; ++n) max_global[n] = max_ref[n] + 3.0f * unit(rng);
  std::vector<float> sumexp_ref(c.N), target_ref(c.N);
  iris::cpu::xent_local_sumexp(sumexp_ref.data(), target_ref.data(), logits.values.data(), max_global.data(),
                               targets.data(), c.N, c.V_local, c.V_valid, c.vocab_start);
  DeviceBuffer<float> d_max_global(max_global), d_sumexp(c.N), d_target_logit(c.N);
  DeviceBuffer<int32_t> d_targets(targets);
  iris::cuda::xent_local_sumexp(d_sumexp.get(), d_target_logit.get(), d_logits.get(), d_max_global.get(),
                                d_targets.get(), c.N, c.V_local, c.V_valid, c.vocab_start, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close("sumexp (fp32)", d_sumexp.download(), sumexp_ref, 1e-6, 1e-4, 1e-4);
  expect_close("target_logit (fp32, exact)", d_target_logit.download(), target_ref, 0.0, 0.0, 0.0);

  // Phase 3, on the reference statistics so that it is tested on its own.
  std::vector<float> losses_ref(c.N);
  iris::cpu::xent_losses(losses_ref.data(), max_global.data(), sumexp_ref.data(), target_ref.data(), c.N);
  DeviceBuffer<float> d_sumexp_ref(sumexp_ref), d_target_ref(target_ref), d_losses(c.N);
  iris::cuda::xent_losses(d_losses.get(), d_max_global.get(), d_sumexp_ref.get(), d_target_ref.get(), c.N, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close("losses (fp32)", d_losses.download(), losses_ref, 1e-4, 1e-5, 1e-5);

  // Backward, out of place and then in place over the logits.
  std::vector<float> dlogits_ref(logits.values.size());
  iris::cpu::xent_backward(dlogits_ref.data(), logits.values.data(), max_global.data(), sumexp_ref.data(),
                           targets.data(), dloss.data(), c.N, c.V_local, c.V_valid, c.vocab_start);
  DeviceBuffer<float> d_dloss(dloss);
  DeviceBuffer<bf16> d_dlogits(logits.bits.size());
  iris::cuda::xent_backward(d_dlogits.get(), d_logits.get(), d_max_global.get(), d_sumexp_ref.get(), d_targets.get(),
                            d_dloss.get(), c.N, c.V_local, c.V_valid, c.vocab_start, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close("dlogits (bf16)", to_float(d_dlogits.download()), dlogits_ref, 1e-6, 1e-2, 1e-2);
  iris::cuda::xent_backward(d_logits.get(), d_logits.get(), d_max_global.get(), d_sumexp_ref.get(), d_targets.get(),
                            d_dloss.get(), c.N, c.V_local, c.V_valid, c.vocab_start, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close("dlogits in place (bf16)", to_float(d_logits.download()), dlogits_ref, 1e-6, 1e-2, 1e-2);
}

TEST(GpuXent, PhasesMatchCpu) {
  IRIS_REQUIRE_GPU();
  for (const XentCase& c : kCases) check_xent(c);
}

// A shard with no valid columns (all padding) contributes max −inf and Σ exp 0, and its gradient is all zero.
TEST(GpuXent, ShardWithoutValidColumns) {
  IRIS_REQUIRE_GPU();
  const int N = 5, V_local = 16;
  std::mt19937 rng(3);
  const Bf16Data logits = random_bf16(static_cast<size_t>(N) * V_local, rng, 1.0f);
  const std::vector<int32_t> targets(N, 0);
  const std::vector<float> max_global(N, 1.0f), sumexp(N, 2.0f), dloss(N, 0.2f);
  DeviceBuffer<bf16> d_logits(logits.bits), d_dlogits(logits.bits.size());
  DeviceBuffer<float> d_max(N), d_sumexp(N), d_target(N), d_max_global(max_global), d_sumexp_in(sumexp),
      d_dloss(dloss);
  DeviceBuffer<int32_t> d_targets(targets);
  iris::cuda::xent_local_max(d_max.get(), d_logits.get(), N, V_local, 0, nullptr);
  iris::cuda::xent_local_sumexp(d_sumexp.get(), d_target.get(), d_logits.get(), d_max_global.get(), d_targets.get(),
                                N, V_local, 0, 16, nullptr);
  iris::cuda::xent_backward(d_dlogits.get(), d_logits.get(), d_max_global.get(), d_sumexp_in.get(), d_targets.get(),
                            d_dloss.get(), N, V_local, 0, 16, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  for (float m : d_max.download()) EXPECT_EQ(m, -INFINITY);
  for (float s : d_sumexp.download()) EXPECT_EQ(s, 0.0f);
  for (float t : d_target.download()) EXPECT_EQ(t, 0.0f);
  for (float g : to_float(d_dlogits.download())) EXPECT_EQ(g, 0.0f);
}

// Bad shapes are refused before anything reaches the GPU, so this runs without one.
TEST(GpuXent, RejectsBadShapes) {
  EXPECT_THROW(iris::cuda::xent_local_max(nullptr, nullptr, 4, 8, 9, nullptr), std::invalid_argument);
  EXPECT_THROW(iris::cuda::xent_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 4, 8, -1, 0, nullptr),
               std::invalid_argument);
}

}  // namespace
