// Layer kernels (embedding, RMSNorm, RoPE, SwiGLU) against their CPU references on seeded random data
// over a sweep of shapes, odd sizes included. bf16 inputs are rounded first so both sides see the same
// numbers. Tolerances: bf16 outputs kBf16Out (atol 1e-2, rtol 1.6e-2); fp32 outputs kFp32Out
// (atol 1e-5, rtol 1e-5), or kSumFp32 where a long fp32 sum is reordered (N rows of O(1) terms).
// bf16 parameter gradients (train.grad_dtype = bf16): kBf16Grad, the fp32 sum's kSumFp32 plus the one
// rounding of the accumulated gradient to bf16 (half an ulp: 2^-9 relative; rtol 2^-8 leaves a factor 2).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "src/kernels/cpu/ops.h"
#include "src/kernels/cuda/embedding.cuh"
#include "src/kernels/cuda/rmsnorm.cuh"
#include "src/kernels/cuda/rope.cuh"
#include "src/kernels/cuda/swiglu.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace iris::test {
namespace {

using iris::cuda::bf16;
constexpr Tolerance kSumFp32{1e-4, 1e-4};
constexpr Tolerance kRstd{1e-6, 3e-5};  // Σx² over C ≤ 5120 in another order: ~sqrt(C)·2^-24 relative
constexpr Tolerance kBf16Grad{1e-4, 1.0 / 256};

std::string dims(const char* what, std::initializer_list<int> values) {
  std::string s = what;
  for (int v : values) s += " " + std::to_string(v);
  return s;
}

// ---- embedding -------------------------------------------------------------------------------
struct EmbeddingShape {
  int N, C, vocab_start, V_local, V_total;
};
const EmbeddingShape kEmbeddingShapes[] = {
    {1, 1, 0, 1, 1}, {17, 33, 0, 50, 50}, {64, 100, 10, 20, 40}, {300, 257, 32, 64, 128}, {5000, 64, 0, 7, 7},
    {1024, 4096, 100, 900, 1000}};

TEST(GpuEmbedding, ForwardAndBackwardMatchCpu) {
  IRIS_REQUIRE_GPU();
  uint64_t seed = 1;
  for (const auto& s : kEmbeddingShapes) {
    const auto tokens = random_ints(s.N, seed++, 0, s.V_total - 1);                 // (N,) some outside the shard
    const auto wte = round_bf16(random_floats(size_t(s.V_local) * s.C, seed++));    // (V_local, C)
    const auto dout = round_bf16(random_floats(size_t(s.N) * s.C, seed++));         // (N, C)
    const auto dwte0 = random_floats(size_t(s.V_local) * s.C, seed++);              // (V_local, C)
    std::vector<float> ref_out(size_t(s.N) * s.C), ref_dwte = dwte0;
    cpu::embedding_forward(ref_out.data(), tokens.data(), wte.data(), s.N, s.C, s.vocab_start, s.V_local);
    cpu::embedding_backward(ref_dwte.data(), dout.data(), tokens.data(), s.N, s.C, s.vocab_start, s.V_local);

    DeviceBuffer<int32_t> d_tokens(tokens);
    DeviceBuffer<bf16> d_wte(to_bf16(wte)), d_out(ref_out.size()), d_dout(to_bf16(dout));
    DeviceBuffer<float> d_dwte(dwte0);
    cuda::embedding_forward(d_out.get(), d_tokens.get(), d_wte.get(), s.N, s.C, s.vocab_start, s.V_local, nullptr);
    cuda::embedding_backward(d_dwte.get(), d_dout.get(), d_tokens.get(), s.N, s.C, s.vocab_start, s.V_local,
                             nullptr);
    const auto label = dims("N C start V_local", {s.N, s.C, s.vocab_start, s.V_local});
    // A gather copies bf16 values: exact.
    EXPECT_TRUE(all_close("embedding forward " + label, download_as_float(d_out), ref_out, 0.0, 0.0));
    // Same additions in the same (token) order as the CPU op: expected bit-identical; kFp32Out allows for
    // a compiler that reorders the CPU loop.
    EXPECT_TRUE(all_close("embedding backward " + label, download_as_float(d_dwte), ref_dwte, kFp32Out.atol,
                          kFp32Out.rtol));
  }
}

TEST(GpuEmbedding, BackwardIsBitIdenticalAcrossRuns) {
  IRIS_REQUIRE_GPU();
  const int N = 8192, C = 1000, V_local = 37;  // few rows, so every row is hit by hundreds of tokens
  const auto tokens = random_ints(N, 11, 0, V_local - 1);
  const auto dout = random_floats(size_t(N) * C, 12);
  DeviceBuffer<int32_t> d_tokens(tokens);
  DeviceBuffer<bf16> d_dout(to_bf16(dout));
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer<float> d_dwte(std::vector<float>(size_t(V_local) * C, 0.0f));
    cuda::embedding_backward(d_dwte.get(), d_dout.get(), d_tokens.get(), N, C, 0, V_local, nullptr);
    runs.push_back(d_dwte.download());
  }
  EXPECT_EQ(0, std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)));
  double norm = 0.0;
  for (float x : runs[0]) norm += double(x) * x;
  EXPECT_GT(norm, 0.0);  // the kernel wrote something
}

// The bf16-gradient backward: each row's tokens summed in fp32 in token order, added to the row once.
// Against the fp32 CPU op within kBf16Grad; and bit for bit against that arithmetic done on the host
// (fp32 adds in the same order, one rounding), which a kernel rounding per token would miss.
TEST(GpuEmbedding, Bf16GradientBackwardMatchesCpu) {
  IRIS_REQUIRE_GPU();
  uint64_t seed = 100;
  for (const auto& s : kEmbeddingShapes) {
    const auto tokens = random_ints(s.N, seed++, 0, s.V_total - 1);                 // (N,) some outside the shard
    const auto dout = round_bf16(random_floats(size_t(s.N) * s.C, seed++));         // (N, C)
    const auto dwte0 = round_bf16(random_floats(size_t(s.V_local) * s.C, seed++));  // (V_local, C)
    std::vector<float> ref_dwte = dwte0;
    cpu::embedding_backward(ref_dwte.data(), dout.data(), tokens.data(), s.N, s.C, s.vocab_start, s.V_local);
    std::vector<float> sums(size_t(s.V_local) * s.C, 0.0f);  // the kernel's fp32 row sums, token order
    for (int n = 0; n < s.N; ++n) {
      const int row = tokens[n] - s.vocab_start;
      if (row < 0 || row >= s.V_local) continue;
      for (int c = 0; c < s.C; ++c) sums[size_t(row) * s.C + c] += dout[size_t(n) * s.C + c];
    }
    std::vector<float> emulated(sums.size());
    for (size_t i = 0; i < sums.size(); ++i) emulated[i] = dwte0[i] + sums[i];
    emulated = round_bf16(emulated);

    const size_t workspace_bytes = cuda::embedding_backward_workspace_bytes(s.N, s.V_local);
    DeviceBuffer<int32_t> d_tokens(tokens);
    DeviceBuffer<bf16> d_dout(to_bf16(dout)), d_dwte(to_bf16(dwte0));
    DeviceBuffer<unsigned char> d_workspace(workspace_bytes);
    cuda::embedding_backward(d_dwte.get(), d_dout.get(), d_tokens.get(), s.N, s.C, s.vocab_start, s.V_local,
                             d_workspace.get(), workspace_bytes, nullptr);
    const auto label = dims("N C start V_local", {s.N, s.C, s.vocab_start, s.V_local});
    const auto got = download_as_float(d_dwte);
    EXPECT_TRUE(all_close("bf16 embedding backward " + label, got, ref_dwte, kBf16Grad.atol, kBf16Grad.rtol));
    EXPECT_TRUE(all_close("bf16 embedding backward, one rounding " + label, got, emulated, 0.0, 0.0));
  }
}

TEST(GpuEmbedding, Bf16GradientBackwardIsBitIdenticalAcrossRuns) {
  IRIS_REQUIRE_GPU();
  const int N = 8192, C = 1000, V_local = 37;  // few rows, so every row is hit by hundreds of tokens
  const auto tokens = random_ints(N, 13, 0, V_local - 1);
  const auto dout = random_floats(size_t(N) * C, 14);
  const size_t workspace_bytes = cuda::embedding_backward_workspace_bytes(N, V_local);
  DeviceBuffer<int32_t> d_tokens(tokens);
  DeviceBuffer<bf16> d_dout(to_bf16(dout));
  DeviceBuffer<unsigned char> d_workspace(workspace_bytes);
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer<bf16> d_dwte(to_bf16(std::vector<float>(size_t(V_local) * C, 0.0f)));
    cuda::embedding_backward(d_dwte.get(), d_dout.get(), d_tokens.get(), N, C, 0, V_local, d_workspace.get(),
                             workspace_bytes, nullptr);
    runs.push_back(download_as_float(d_dwte));
  }
  EXPECT_EQ(0, std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)));
  double norm = 0.0;
  for (float x : runs[0]) norm += double(x) * x;
  EXPECT_GT(norm, 0.0);  // the kernel wrote something
}

// ---- RMSNorm -------------------------------------------------------------------------------------
const std::pair<int, int> kNormShapes[] = {{1, 1}, {3, 7}, {17, 100}, {64, 257}, {128, 1024}, {33, 4096}, {5, 5120}};

TEST(GpuRmsnorm, ForwardBackwardAndFusedResidualMatchCpu) {
  IRIS_REQUIRE_GPU();
  const float eps = 1e-5f;
  uint64_t seed = 300;
  for (const auto& [N, C] : kNormShapes) {
    const size_t NC = size_t(N) * C;
    const auto residual = round_bf16(random_floats(NC, seed++));                 // (N, C)
    const auto inp = round_bf16(random_floats(NC, seed++));                      // (N, C)
    const auto weight = round_bf16(random_floats(C, seed++, 0.5f, 1.5f));         // (C,)
    const auto dout = round_bf16(random_floats(NC, seed++));                     // (N, C)
    const auto dweight0 = random_floats(C, seed++);                              // (C,)
    const auto dresidual0 = round_bf16(random_floats(NC, seed++));               // (N, C)
    const auto label = dims("N C", {N, C});

    // Reference: x = bf16(residual + inp); out = rmsnorm(x); dinp, dweight from dout.
    std::vector<float> x(NC);
    for (size_t i = 0; i < NC; ++i) x[i] = residual[i] + inp[i];
    x = round_bf16(x);
    std::vector<float> ref_out(NC), ref_rstd(N), ref_dinp(NC), ref_dweight = dweight0;
    cpu::rmsnorm_forward(ref_out.data(), ref_rstd.data(), x.data(), weight.data(), N, C, eps);
    cpu::rmsnorm_backward(ref_dinp.data(), ref_dweight.data(), dout.data(), x.data(), weight.data(), ref_rstd.data(),
                          N, C);
    std::vector<float> ref_dresidual(NC);
    for (size_t i = 0; i < NC; ++i) ref_dresidual[i] = dresidual0[i] + ref_dinp[i];

    DeviceBuffer<bf16> d_residual(to_bf16(residual)), d_inp(to_bf16(inp)), d_weight(to_bf16(weight));
    DeviceBuffer<bf16> d_x(NC), d_out(NC), d_out_plain(NC), d_dout(to_bf16(dout)), d_dinp(NC);
    DeviceBuffer<bf16> d_dresidual(to_bf16(dresidual0));
    DeviceBuffer<float> d_rstd(N), d_rstd_plain(N), d_dweight(dweight0), d_dweight_unused(dweight0);
    cuda::residual_rmsnorm_forward(d_x.get(), d_out.get(), d_rstd.get(), d_residual.get(), d_inp.get(),
                                   d_weight.get(), N, C, eps, nullptr);
    cuda::rmsnorm_forward(d_out_plain.get(), d_rstd_plain.get(), d_x.get(), d_weight.get(), N, C, eps, nullptr);
    cuda::rmsnorm_backward(d_dinp.get(), d_dweight.get(), d_dout.get(), d_x.get(), d_weight.get(), d_rstd.get(), N, C,
                           false, nullptr);
    cuda::rmsnorm_backward(d_dresidual.get(), d_dweight_unused.get(), d_dout.get(), d_x.get(), d_weight.get(),
                           d_rstd.get(), N, C, true, nullptr);

    EXPECT_TRUE(all_close("residual sum " + label, download_as_float(d_x), x, 0.0, 0.0));  // one rounding, exact
    EXPECT_TRUE(all_close("fused out " + label, download_as_float(d_out), ref_out, kBf16Out.atol, kBf16Out.rtol));
    EXPECT_TRUE(all_close("plain out " + label, download_as_float(d_out_plain), ref_out, kBf16Out.atol,
                          kBf16Out.rtol));
    EXPECT_TRUE(all_close("rstd " + label, download_as_float(d_rstd), ref_rstd, kRstd.atol, kRstd.rtol));
    EXPECT_TRUE(all_close("rstd plain " + label, download_as_float(d_rstd_plain), ref_rstd, kRstd.atol, kRstd.rtol));
    EXPECT_TRUE(all_close("dinp " + label, download_as_float(d_dinp), ref_dinp, kBf16Out.atol, kBf16Out.rtol));
    EXPECT_TRUE(all_close("dinp += " + label, download_as_float(d_dresidual), ref_dresidual, kBf16Out.atol,
                          kBf16Out.rtol));
    EXPECT_TRUE(all_close("dweight += " + label, download_as_float(d_dweight), ref_dweight, kSumFp32.atol,
                          kSumFp32.rtol));
  }
}

// bf16 weight gradient: the same fp32 row sum as the fp32 kernel, added to the bf16 gradient once.
TEST(GpuRmsnorm, Bf16WeightGradientMatchesCpu) {
  IRIS_REQUIRE_GPU();
  const float eps = 1e-5f;
  uint64_t seed = 350;
  for (const auto& [N, C] : kNormShapes) {
    const size_t NC = size_t(N) * C;
    const auto x = round_bf16(random_floats(NC, seed++));                        // (N, C)
    const auto weight = round_bf16(random_floats(C, seed++, 0.5f, 1.5f));         // (C,)
    const auto dout = round_bf16(random_floats(NC, seed++));                     // (N, C)
    const auto dweight0 = round_bf16(random_floats(C, seed++));                  // (C,)
    std::vector<float> ref_out(NC), ref_rstd(N), ref_dinp(NC), ref_dweight = dweight0;
    cpu::rmsnorm_forward(ref_out.data(), ref_rstd.data(), x.data(), weight.data(), N, C, eps);
    cpu::rmsnorm_backward(ref_dinp.data(), ref_dweight.data(), dout.data(), x.data(), weight.data(), ref_rstd.data(),
                          N, C);

    DeviceBuffer<bf16> d_x(to_bf16(x)), d_weight(to_bf16(weight)), d_out(NC), d_dout(to_bf16(dout)), d_dinp(NC);
    DeviceBuffer<bf16> d_dweight(to_bf16(dweight0));
    DeviceBuffer<float> d_rstd(N);
    cuda::rmsnorm_forward(d_out.get(), d_rstd.get(), d_x.get(), d_weight.get(), N, C, eps, nullptr);
    cuda::rmsnorm_backward(d_dinp.get(), d_dweight.get(), d_dout.get(), d_x.get(), d_weight.get(), d_rstd.get(), N, C,
                           false, nullptr);
    const auto label = dims("N C", {N, C});
    EXPECT_TRUE(all_close("dinp (bf16 dweight) " + label, download_as_float(d_dinp), ref_dinp, kBf16Out.atol,
                          kBf16Out.rtol));
    EXPECT_TRUE(all_close("bf16 dweight += " + label, download_as_float(d_dweight), ref_dweight, kBf16Grad.atol,
                          kBf16Grad.rtol));
  }
}

// ---- RoPE ------------------------------------------------------------------------------------
struct RopeShape {
  int N, H, HS;
};
const RopeShape kRopeShapes[] = {{1, 1, 2}, {7, 5, 10}, {5, 3, 64}, {17, 4, 128}, {300, 8, 64}, {129, 2, 128}};

std::vector<float> inverse_frequencies(int HS, double theta) {
  std::vector<float> inv_freq(HS / 2);  // (HS/2,) HF: 1 / theta^(2i/HS)
  for (int i = 0; i < HS / 2; ++i) inv_freq[i] = float(1.0 / std::pow(theta, 2.0 * i / HS));
  return inv_freq;
}

TEST(GpuRope, TablesForwardAndBackwardMatchCpu) {
  IRIS_REQUIRE_GPU();
  uint64_t seed = 400;
  for (const auto& s : kRopeShapes) {
    const int half = s.HS / 2;
    const auto pos = random_ints(s.N, seed++, 0, 8191);         // (N,)
    const auto inv_freq = inverse_frequencies(s.HS, 500000.0);  // (HS/2,)
    const auto x = round_bf16(random_floats(size_t(s.N) * s.H * s.HS, seed++));  // (N, H, HS)
    std::vector<float> ref_cos(size_t(s.N) * half), ref_sin(ref_cos.size());
    cpu::rope_tables(ref_cos.data(), ref_sin.data(), pos.data(), inv_freq.data(), s.N, s.HS);
    std::vector<float> ref_fwd = x, ref_bwd = x;
    cpu::rope_forward(ref_fwd.data(), ref_cos.data(), ref_sin.data(), s.N, s.H, s.HS);
    cpu::rope_backward(ref_bwd.data(), ref_cos.data(), ref_sin.data(), s.N, s.H, s.HS);

    DeviceBuffer<int32_t> d_pos(pos);
    DeviceBuffer<float> d_inv_freq(inv_freq), d_cos(ref_cos.size()), d_sin(ref_sin.size());
    DeviceBuffer<bf16> d_fwd(to_bf16(x)), d_bwd(to_bf16(x));
    cuda::rope_tables(d_cos.get(), d_sin.get(), d_pos.get(), d_inv_freq.get(), s.N, s.HS, nullptr);
    cuda::rope_forward(d_fwd.get(), d_cos.get(), d_sin.get(), s.N, s.H, s.HS, nullptr);
    cuda::rope_backward(d_bwd.get(), d_cos.get(), d_sin.get(), s.N, s.H, s.HS, nullptr);
    const auto label = dims("N H HS", {s.N, s.H, s.HS});
    // cos/sin of the same fp32 angle, in double, rounded: equal up to a last-bit difference of libm.
    EXPECT_TRUE(all_close("cos " + label, download_as_float(d_cos), ref_cos, 1e-6, 0.0));
    EXPECT_TRUE(all_close("sin " + label, download_as_float(d_sin), ref_sin, 1e-6, 0.0));
    EXPECT_TRUE(all_close("rope forward " + label, download_as_float(d_fwd), ref_fwd, kBf16Out.atol, kBf16Out.rtol));
    EXPECT_TRUE(all_close("rope backward " + label, download_as_float(d_bwd), ref_bwd, kBf16Out.atol, kBf16Out.rtol));
  }
}

// ---- SwiGLU ----------------------------------------------------------------------------------
const std::pair<int, int> kSwigluShapes[] = {{1, 1}, {3, 7}, {33, 1000}, {128, 1376}, {17, 14336}};

TEST(GpuSwiglu, ForwardAndBackwardMatchCpu) {
  IRIS_REQUIRE_GPU();
  uint64_t seed = 500;
  for (const auto& [N, F] : kSwigluShapes) {
    const size_t NF = size_t(N) * F;
    const auto gate = round_bf16(random_floats(NF, seed++, -8.0f, 8.0f));  // (N, F) reaches σ's flat tails
    const auto up = round_bf16(random_floats(NF, seed++));                 // (N, F)
    const auto dout = round_bf16(random_floats(NF, seed++));               // (N, F)
    std::vector<float> ref_out(NF), ref_dgate(NF), ref_dup(NF);
    cpu::swiglu_forward(ref_out.data(), gate.data(), up.data(), N, F);
    cpu::swiglu_backward(ref_dgate.data(), ref_dup.data(), dout.data(), gate.data(), up.data(), N, F);

    DeviceBuffer<bf16> d_gate(to_bf16(gate)), d_up(to_bf16(up)), d_dout(to_bf16(dout));
    DeviceBuffer<bf16> d_out(NF), d_dgate(NF), d_dup(NF);
    cuda::swiglu_forward(d_out.get(), d_gate.get(), d_up.get(), N, F, nullptr);
    cuda::swiglu_backward(d_dgate.get(), d_dup.get(), d_dout.get(), d_gate.get(), d_up.get(), N, F, nullptr);
    const auto label = dims("N F", {N, F});
    EXPECT_TRUE(all_close("swiglu out " + label, download_as_float(d_out), ref_out, kBf16Out.atol, kBf16Out.rtol));
    EXPECT_TRUE(all_close("swiglu dgate " + label, download_as_float(d_dgate), ref_dgate, kBf16Out.atol,
                          kBf16Out.rtol));
    EXPECT_TRUE(all_close("swiglu dup " + label, download_as_float(d_dup), ref_dup, kBf16Out.atol, kBf16Out.rtol));
  }
}

}  // namespace
}  // namespace iris::test
