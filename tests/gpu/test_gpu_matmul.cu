// cuBLASLt GEMMs against cpu::matmul_forward / matmul_backward on seeded random data over a sweep of
// shapes, odd sizes included. Inputs are rounded to bf16 first so both sides multiply the same numbers;
// what remains is fp32 accumulation order and, for bf16 outputs, one final rounding.
// Tolerances: bf16 outputs kBf16Out (atol 1e-2, rtol 1.6e-2: 2^-9 rounding plus order noise);
// fp32 outputs atol 1e-3, rtol 2e-4: accumulation-order noise of K ≤ 1024 products of magnitude ≤ 1 with
// outputs ~10 (typical ~1e-5; tensor-core fp32 accumulation is not IEEE-ordered). A wrong transpose or
// leading dimension gives O(1) errors.
#include <gtest/gtest.h>

#include <tuple>

#include "src/kernels/cpu/ops.h"
#include "src/kernels/cuda/matmul.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace iris::test {
namespace {

using iris::cuda::bf16;
constexpr Tolerance kGemmFp32{1e-3, 2e-4};

struct Shape {
  int N, IC, OC;
};
const Shape kShapes[] = {{1, 1, 1}, {4, 8, 16}, {7, 13, 5}, {33, 65, 17}, {128, 256, 384}, {257, 511, 129},
                         {512, 1024, 768}};

std::string label(const char* what, const Shape& s) {
  return std::string(what) + " N=" + std::to_string(s.N) + " IC=" + std::to_string(s.IC) + " OC=" +
         std::to_string(s.OC);
}

TEST(GpuMatmul, ForwardMatchesCpuBf16AndFp32Out) {
  IRIS_REQUIRE_GPU();
  cuda::Matmul matmul;
  uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    const auto inp = round_bf16(random_floats(size_t(s.N) * s.IC, seed++));     // (N, IC)
    const auto weight = round_bf16(random_floats(size_t(s.OC) * s.IC, seed++));  // (OC, IC)
    std::vector<float> ref(size_t(s.N) * s.OC);                                   // (N, OC)
    cpu::matmul_forward(ref.data(), inp.data(), weight.data(), s.N, s.IC, s.OC);

    DeviceBuffer<bf16> d_inp(to_bf16(inp)), d_weight(to_bf16(weight)), d_out_bf16(ref.size());
    DeviceBuffer<float> d_out_f32(ref.size());
    matmul.forward(d_out_bf16.get(), d_inp.get(), d_weight.get(), s.N, s.IC, s.OC, nullptr);
    matmul.forward(d_out_f32.get(), d_inp.get(), d_weight.get(), s.N, s.IC, s.OC, nullptr);
    EXPECT_TRUE(all_close(label("forward bf16", s), download_as_float(d_out_bf16), ref, kBf16Out.atol, kBf16Out.rtol));
    EXPECT_TRUE(all_close(label("forward fp32", s), download_as_float(d_out_f32), ref, kGemmFp32.atol, kGemmFp32.rtol));
  }
}

TEST(GpuMatmul, BackwardMatchesCpuIncludingAccumulation) {
  IRIS_REQUIRE_GPU();
  cuda::Matmul matmul;
  uint64_t seed = 200;
  for (const Shape& s : kShapes) {
    const auto inp = round_bf16(random_floats(size_t(s.N) * s.IC, seed++));     // (N, IC)
    const auto weight = round_bf16(random_floats(size_t(s.OC) * s.IC, seed++));  // (OC, IC)
    const auto dout = round_bf16(random_floats(size_t(s.N) * s.OC, seed++));     // (N, OC)
    const auto dweight0 = random_floats(size_t(s.OC) * s.IC, seed++);            // (OC, IC) earlier micro-batches
    const auto dinp0 = round_bf16(random_floats(size_t(s.N) * s.IC, seed++));    // (N, IC) residual-stream grad

    // Reference: dinp written, dinp accumulated, dweight accumulated (beta = 1) onto dweight0.
    std::vector<float> ref_dinp(inp.size()), ref_dinp_acc = dinp0, ref_dweight = dweight0;
    std::vector<float> ref_dweight_again = dweight0;
    cpu::matmul_backward(ref_dinp.data(), ref_dweight.data(), dout.data(), inp.data(), weight.data(), s.N, s.IC,
                         s.OC);
    cpu::matmul_backward(ref_dinp_acc.data(), ref_dweight_again.data(), dout.data(), inp.data(), weight.data(), s.N,
                         s.IC, s.OC, /*accumulate_dinp=*/true);

    DeviceBuffer<bf16> d_inp(to_bf16(inp)), d_weight(to_bf16(weight)), d_dout(to_bf16(dout));
    DeviceBuffer<bf16> d_dinp(inp.size()), d_dinp_acc(to_bf16(dinp0)), d_dweight_bf16(to_bf16(dweight0));
    DeviceBuffer<float> d_dweight(dweight0);
    matmul.backward(d_dinp.get(), d_dweight.get(), d_dout.get(), d_inp.get(), d_weight.get(), s.N, s.IC, s.OC,
                    false, nullptr);
    matmul.backward_input(d_dinp_acc.get(), d_dout.get(), d_weight.get(), s.N, s.IC, s.OC, true, nullptr);
    matmul.backward_weight(d_dweight_bf16.get(), d_dout.get(), d_inp.get(), s.N, s.IC, s.OC, nullptr);

    EXPECT_TRUE(all_close(label("dinp", s), download_as_float(d_dinp), ref_dinp, kBf16Out.atol, kBf16Out.rtol));
    EXPECT_TRUE(all_close(label("dinp +=", s), download_as_float(d_dinp_acc), ref_dinp_acc, kBf16Out.atol,
                          kBf16Out.rtol));
    EXPECT_TRUE(all_close(label("dweight += fp32", s), download_as_float(d_dweight), ref_dweight, kGemmFp32.atol,
                          kGemmFp32.rtol));
    // bf16 gradient buffer: the start value was rounded to bf16, so compare against that start.
    std::vector<float> ref_dweight_bf16 = round_bf16(dweight0);
    cpu::matmul_backward(nullptr, ref_dweight_bf16.data(), dout.data(), inp.data(), weight.data(), s.N, s.IC, s.OC);
    EXPECT_TRUE(all_close(label("dweight += bf16", s), download_as_float(d_dweight_bf16), ref_dweight_bf16,
                          kBf16Out.atol, kBf16Out.rtol));
  }
}

TEST(GpuMatmul, DweightAccumulatesOverMicroBatches) {
  // Two calls with beta = 1 must equal one call over both micro-batches' rows.
  IRIS_REQUIRE_GPU();
  cuda::Matmul matmul;
  const int N = 64, IC = 96, OC = 80;
  const auto inp = round_bf16(random_floats(size_t(2 * N) * IC, 7));   // (2N, IC)
  const auto dout = round_bf16(random_floats(size_t(2 * N) * OC, 8));  // (2N, OC)
  std::vector<float> ref(size_t(OC) * IC, 0.0f);                        // (OC, IC)
  cpu::matmul_backward(nullptr, ref.data(), dout.data(), inp.data(), nullptr, 2 * N, IC, OC);

  DeviceBuffer<bf16> d_inp(to_bf16(inp)), d_dout(to_bf16(dout));
  DeviceBuffer<float> d_dweight(std::vector<float>(ref.size(), 0.0f));
  for (int micro = 0; micro < 2; ++micro)
    matmul.backward_weight(d_dweight.get(), d_dout.get() + size_t(micro) * N * OC, d_inp.get() + size_t(micro) * N * IC,
                           N, IC, OC, nullptr);
  EXPECT_TRUE(all_close("dweight over 2 micro-batches", download_as_float(d_dweight), ref, kGemmFp32.atol,
                        kGemmFp32.rtol));
}

TEST(GpuMatmul, PlanIsChosenOncePerShape) {
  IRIS_REQUIRE_GPU();
  cuda::Matmul matmul;
  const int N = 32, IC = 64, OC = 48;
  DeviceBuffer<bf16> inp(size_t(N) * IC), weight(size_t(OC) * IC), out(size_t(N) * OC), out2(size_t(N) * OC);
  IRIS_CUDA_CHECK(cudaMemset(inp.get(), 0, inp.size() * sizeof(bf16)));
  IRIS_CUDA_CHECK(cudaMemset(weight.get(), 0, weight.size() * sizeof(bf16)));
  matmul.forward(out.get(), inp.get(), weight.get(), N, IC, OC, nullptr);
  EXPECT_EQ(matmul.cached_plans(), 1u);
  matmul.forward(out2.get(), inp.get(), weight.get(), N, IC, OC, nullptr);  // same shape, 256-aligned pointers
  EXPECT_EQ(matmul.cached_plans(), 1u);
  matmul.forward(out.get(), inp.get(), weight.get(), N / 2, IC, OC, nullptr);
  EXPECT_EQ(matmul.cached_plans(), 2u);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace iris::test
