// Optimizer-side kernels against their CPU references: fused AdamW (three steps, fp32 and bf16
// gradients, bf16 weight copy), the deterministic sum of squares, casts, add and scale.
// Tolerances: AdamW params atol 1e-6 rtol 1e-5; m atol 1e-7 rtol 1e-5 (nvcc fuses β1·m + (1−β1)·g into
// one FMA, GCC does not: ½ ulp of β1·m ≈ 7e-9 absolute, which cancellation can leave next to m ≈ 0; a CPU
// emulation of this test with the FMA saw 6e-8); v atol 1e-9 rtol 1e-5 (positive terms, no
// cancellation); sum of squares rtol 1e-11 (double sums of
// positive terms in another order: bound (chunk length)·2^-53, a dropped element would show as ~1e-6);
// casts, add and scale are single correctly rounded operations, so exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "src/kernels/cpu/ops.h"
#include "src/kernels/cuda/adamw.cuh"
#include "src/kernels/cuda/elementwise.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace iris::test {
namespace {

using iris::cuda::bf16;
const size_t kSizes[] = {1, 7, 1000, 100003, (size_t{1} << 20) + 3};

template <typename GradT>
void check_adamw(bool bf16_grads) {
  const float lr = 3e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
  uint64_t seed = bf16_grads ? 2000 : 1000;
  for (size_t n : kSizes) {
    auto params = random_floats(n, seed++);  // (n,) fp32 master weights
    std::vector<float> m(n, 0.0f), v(n, 0.0f);
    DeviceBuffer<float> d_params(params), d_m(m), d_v(v);
    DeviceBuffer<bf16> d_params_bf16(n);
    for (int step = 1; step <= 3; ++step) {
      auto grads = random_floats(n, seed++, -2.0f, 2.0f);  // (n,)
      if (bf16_grads) grads = round_bf16(grads);
      const float grad_scale = step == 2 ? 0.5f : 1.0f;  // step 2 as if clipped
      cpu::adamw_update(params.data(), m.data(), v.data(), grads.data(), n, lr, beta1, beta2, eps, weight_decay,
                        step, grad_scale);
      if constexpr (std::is_same_v<GradT, bf16>) {
        DeviceBuffer<bf16> d_grads(to_bf16(grads));
        cuda::adamw_update(d_params.get(), d_params_bf16.get(), d_m.get(), d_v.get(), d_grads.get(), n, lr, beta1,
                           beta2, eps, weight_decay, step, grad_scale, nullptr);
      } else {
        DeviceBuffer<float> d_grads(grads);
        cuda::adamw_update(d_params.get(), d_params_bf16.get(), d_m.get(), d_v.get(), d_grads.get(), n, lr, beta1,
                           beta2, eps, weight_decay, step, grad_scale, nullptr);
      }
    }
    const std::string label = std::string(bf16_grads ? "bf16 grads" : "fp32 grads") + " n=" + std::to_string(n);
    const auto got_params = d_params.download();
    EXPECT_TRUE(all_close("adamw params " + label, got_params, params, 1e-6, 1e-5));
    EXPECT_TRUE(all_close("adamw m " + label, d_m.download(), m, 1e-7, 1e-5));
    EXPECT_TRUE(all_close("adamw v " + label, d_v.download(), v, 1e-9, 1e-5));
    // The bf16 copy is exactly the rounding of the GPU's own fp32 result.
    EXPECT_TRUE(all_close("adamw bf16 copy " + label, download_as_float(d_params_bf16), round_bf16(got_params), 0.0,
                          0.0));
  }
}

TEST(GpuAdamw, MatchesCpuOverThreeStepsFp32Grads) {
  IRIS_REQUIRE_GPU();
  check_adamw<float>(false);
}

TEST(GpuAdamw, MatchesCpuOverThreeStepsBf16Grads) {
  IRIS_REQUIRE_GPU();
  check_adamw<bf16>(true);
}

TEST(GpuSumSquares, MatchesCpuAndIsDeterministic) {
  IRIS_REQUIRE_GPU();
  DeviceBuffer<double> d_out(1), d_out_again(1), d_partials(cuda::kSumSquaresPartials);
  uint64_t seed = 3000;
  for (size_t n : kSizes) {
    const auto x = random_floats(n, seed++, -3.0f, 3.0f);
    DeviceBuffer<float> d_x(x);
    cuda::sum_squares(d_out.get(), d_partials.get(), d_x.get(), n, nullptr);
    cuda::sum_squares(d_out_again.get(), d_partials.get(), d_x.get(), n, nullptr);
    const double got = d_out.download()[0], again = d_out_again.download()[0];
    const double ref = cpu::sum_squares(x.data(), n);
    std::printf("  sum_squares fp32 n=%zu got %.17g ref %.17g rel %.3e\n", n, got, ref, std::fabs(got - ref) / ref);
    EXPECT_NEAR(got, ref, 1e-11 * ref) << "n=" << n;
    EXPECT_EQ(0, std::memcmp(&got, &again, sizeof got)) << "two runs differ, n=" << n;

    const auto xb = round_bf16(x);
    DeviceBuffer<bf16> d_xb(to_bf16(xb));
    cuda::sum_squares(d_out.get(), d_partials.get(), d_xb.get(), n, nullptr);
    const double got_b = d_out.download()[0], ref_b = cpu::sum_squares(xb.data(), n);
    EXPECT_NEAR(got_b, ref_b, 1e-11 * ref_b) << "bf16 input, n=" << n;
  }
}

TEST(GpuCasts, RoundToNearestEvenLikeTheHostConversion) {
  IRIS_REQUIRE_GPU();
  auto x = random_floats(100003, 4000, -1e4f, 1e4f);
  const float specials[] = {0.0f, -0.0f, 1.0f + 1.0f / 256,  // exactly halfway: rounds to even (1.0)
                            1.0f + 3.0f / 256, std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::max(), 1e-40f, -3.0e38f};
  x.insert(x.end(), std::begin(specials), std::end(specials));
  const size_t n = x.size();
  DeviceBuffer<float> d_x(x), d_back(n);
  DeviceBuffer<bf16> d_b(n);
  cuda::cast_f32_to_bf16(d_b.get(), d_x.get(), n, nullptr);
  cuda::cast_bf16_to_f32(d_back.get(), d_b.get(), n, nullptr);
  const auto got = d_b.download();
  const auto back = d_back.download();
  size_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t want = float_to_bf16(x[i]);
    const uint16_t have = static_cast<__nv_bfloat16_raw>(got[i]).x;
    if (want != have) {
      if (mismatches++ < 5) ADD_FAILURE() << "x=" << x[i] << " host bf16 0x" << std::hex << want << " gpu 0x" << have;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_TRUE(all_close("bf16 -> fp32", back, round_bf16(x), 0.0, 0.0));
}

TEST(GpuElementwise, AddAndScaleMatchCpuExactly) {
  IRIS_REQUIRE_GPU();
  for (size_t n : kSizes) {
    auto a = random_floats(n, 5000 + n), b = random_floats(n, 6000 + n);
    DeviceBuffer<float> d_a(a), d_b(b);
    cuda::add_inplace(d_a.get(), d_b.get(), n, nullptr);
    cuda::scale_inplace(d_a.get(), 0.37f, n, nullptr);
    cpu::add_inplace(a.data(), b.data(), n);
    cpu::scale_inplace(a.data(), 0.37f, n);
    EXPECT_TRUE(all_close("add then scale n=" + std::to_string(n), d_a.download(), a, 0.0, 0.0));
  }
}

// The residual add of the bf16 stage: fp32 sum of the two bf16 inputs, rounded once (exact reference).
TEST(GpuElementwise, AddBf16RoundsTheFp32SumOnce) {
  IRIS_REQUIRE_GPU();
  for (size_t n : kSizes) {
    const auto a = round_bf16(random_floats(n, 7000 + n)), b = round_bf16(random_floats(n, 8000 + n));
    DeviceBuffer<bf16> d_a(to_bf16(a)), d_b(to_bf16(b)), d_out(n);
    cuda::add_bf16(d_out.get(), d_a.get(), d_b.get(), n, nullptr);
    cuda::add_bf16(d_a.get(), d_a.get(), d_b.get(), n, nullptr);  // in place
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
    want = round_bf16(want);
    EXPECT_TRUE(all_close("add_bf16 n=" + std::to_string(n), download_as_float(d_out), want, 0.0, 0.0));
    EXPECT_TRUE(all_close("add_bf16 in place n=" + std::to_string(n), download_as_float(d_a), want, 0.0, 0.0));
    if (n < 2) continue;
    // One element in: not 16-byte aligned, so the one-element-per-thread path (the rest above ran 8 at a time).
    DeviceBuffer<bf16> d_x(to_bf16(a)), d_y(to_bf16(b)), d_z(to_bf16(std::vector<float>(n, 0.0f)));
    cuda::add_bf16(d_z.get() + 1, d_x.get() + 1, d_y.get() + 1, n - 1, nullptr);
    std::vector<float> shifted = want;
    shifted[0] = 0.0f;
    EXPECT_TRUE(all_close("add_bf16 unaligned n=" + std::to_string(n), download_as_float(d_z), shifted, 0.0, 0.0));
  }
}

}  // namespace
}  // namespace iris::test
