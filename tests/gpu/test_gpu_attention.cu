// GPU flash attention (src/kernels/cuda/attention.cu) against the CPU reference (src/kernels/cpu/attention.cpp)
// on seeded random bf16 data over a sweep of shapes. The reference gets the same bf16 values widened to fp32, so
// only the kernels' arithmetic differs. Tolerances (|got − ref| ≤ atol + rtol·|ref| per element, and the
// relative L2 error of the whole tensor): bf16 outputs atol 2e-2, rtol 2e-2, L2 1e-2; fp32 lse atol 1e-3, rtol 1e-3.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "src/kernels/cpu/ops.h"
#include "src/kernels/cuda/attention.cuh"
#include "src/kernels/cuda/attention_detail.cuh"
#include "tests/gpu/gpu_test_util.h"

namespace {

using namespace iris::test;
using bf16 = __nv_bfloat16;

constexpr double kBf16Atol = 2e-2, kBf16Rtol = 2e-2, kBf16RelL2 = 1e-2;
constexpr double kLseAtol = 1e-3, kLseRtol = 1e-3;

struct AttentionCase {
  int B, T, NH, NKV, HS;
  bool doc;
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " NH=" + std::to_string(NH) +
           " NKV=" + std::to_string(NKV) + " HS=" + std::to_string(HS) + (doc ? " doc" : "");
  }
  size_t q_elems() const { return static_cast<size_t>(B) * T * NH * HS; }
  size_t kv_elems() const { return static_cast<size_t>(B) * T * NKV * HS; }
};

// B {1, 2} × T {1, 17, 64, 130, 257} (T ≠ a multiple of the 64-row tile) × HS {64, 128} × NH/NKV {1, 4, 8}
// × with and without document ids.
std::vector<AttentionCase> sweep() {
  std::vector<AttentionCase> cases;
  for (int B : {1, 2})
    for (int T : {1, 17, 64, 130, 257})
      for (int HS : {64, 128})
        for (int ratio : {1, 4, 8})
          for (bool doc : {false, true}) cases.push_back({B, T, 2 * ratio, 2, HS, doc});
  return cases;
}

struct AttentionInputs {
  Bf16Data q, k, v, dout;    // (B, T, NH, HS), (B, T, NKV, HS) ×2, (B, T, NH, HS)
  std::vector<int32_t> doc;  // (B, T) packed documents of 1..48 tokens, or empty
};

AttentionInputs make_inputs(const AttentionCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  AttentionInputs in{random_bf16(c.q_elems(), rng, 1.0f), random_bf16(c.kv_elems(), rng, 1.0f),
                     random_bf16(c.kv_elems(), rng, 1.0f), random_bf16(c.q_elems(), rng, 1.0f), {}};
  if (c.doc) {
    std::uniform_int_distribution<int> length(1, 48);
    in.doc.resize(static_cast<size_t>(c.B) * c.T);
    for (int b = 0; b < c.B; ++b)
      for (int t = 0, id = 0; t < c.T; ++id)
        for (int n = length(rng); n > 0 && t < c.T; --n, ++t) in.doc[static_cast<size_t>(b) * c.T + t] = id;
  }
  return in;
}

uint32_t seed_of(const AttentionCase& c) {
  return static_cast<uint32_t>(1000003u * c.B + 10007u * c.T + 101u * c.NH + 31u * c.HS + 7u * c.NKV + c.doc);
}

enum class Impl { kTensorCores, kSimt, kMma };

void run_forward(Impl impl, bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                 const AttentionCase& c) {
  if (impl == Impl::kTensorCores)
    iris::cuda::attention_forward(out, lse, q, k, v, doc, c.B, c.T, c.NH, c.NKV, c.HS, nullptr);
  else if (impl == Impl::kMma)
    iris::cuda::detail::attention_forward_mma(out, lse, q, k, v, doc, c.B, c.T, c.NH, c.NKV, c.HS, nullptr);
  else
    iris::cuda::detail::attention_forward_simt(out, lse, q, k, v, doc, c.B, c.T, c.NH, c.NKV, c.HS, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
}

void run_backward(Impl impl, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                  const bf16* v, const bf16* out, const float* lse, const int32_t* doc, const AttentionCase& c) {
  if (impl == Impl::kTensorCores || impl == Impl::kMma) {
    // Filled with NaN (all bits set) first: a row statistic the dk/dv kernel read without the dq kernel
    // having written it would poison dk and dv.
    DeviceBuffer<float> delta(static_cast<size_t>(c.B) * c.NH * c.T);
    IRIS_CUDA_CHECK(cudaMemset(delta.get(), 0xff, static_cast<size_t>(c.B) * c.NH * c.T * sizeof(float)));
    if (impl == Impl::kMma)
      iris::cuda::detail::attention_backward_mma(dq, dk, dv, dout, q, k, v, out, lse, delta.get(), doc, c.B, c.T,
                                                 c.NH, c.NKV, c.HS, nullptr);
    else
      iris::cuda::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, delta.get(), doc, c.B, c.T, c.NH, c.NKV,
                                     c.HS, nullptr);
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());  // before delta is freed
  } else
    iris::cuda::detail::attention_backward_simt(dq, dk, dv, dout, q, k, v, out, lse, doc, c.B, c.T, c.NH, c.NKV,
                                                c.HS, nullptr);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
}

void check_forward(Impl impl, const AttentionCase& c) {
  SCOPED_TRACE(c.name());
  std::printf("%s\n", c.name().c_str());
  const AttentionInputs in = make_inputs(c, seed_of(c));
  const int32_t* doc_host = c.doc ? in.doc.data() : nullptr;
  std::vector<float> out_ref(c.q_elems()), lse_ref(static_cast<size_t>(c.B) * c.NH * c.T);
  iris::cpu::attention_forward(out_ref.data(), lse_ref.data(), in.q.values.data(), in.k.values.data(),
                               in.v.values.data(), doc_host, c.B, c.T, c.NH, c.NKV, c.HS);

  DeviceBuffer<bf16> q(in.q.bits), k(in.k.bits), v(in.v.bits), out(c.q_elems());
  DeviceBuffer<float> lse(lse_ref.size());
  std::optional<DeviceBuffer<int32_t>> doc;
  if (c.doc) doc.emplace(in.doc);
  run_forward(impl, out.get(), lse.get(), q.get(), k.get(), v.get(), doc ? doc->get() : nullptr, c);
  expect_close("out (bf16)", to_float(out.download()), out_ref, kBf16Atol, kBf16Rtol, kBf16RelL2);
  expect_close("lse (fp32)", lse.download(), lse_ref, kLseAtol, kLseRtol, kLseAtol);
}

// The backward gets the CPU forward's out (rounded to bf16, as the GPU forward would store it) and lse, so it is
// tested on its own, independent of the GPU forward.
void check_backward(Impl impl, const AttentionCase& c) {
  SCOPED_TRACE(c.name());
  std::printf("%s\n", c.name().c_str());
  const AttentionInputs in = make_inputs(c, seed_of(c));
  const int32_t* doc_host = c.doc ? in.doc.data() : nullptr;
  std::vector<float> out_ref(c.q_elems()), lse_ref(static_cast<size_t>(c.B) * c.NH * c.T);
  iris::cpu::attention_forward(out_ref.data(), lse_ref.data(), in.q.values.data(), in.k.values.data(),
                               in.v.values.data(), doc_host, c.B, c.T, c.NH, c.NKV, c.HS);
  std::vector<bf16> out_bits(out_ref.size());
  for (size_t i = 0; i < out_ref.size(); ++i) out_bits[i] = __float2bfloat16(out_ref[i]);
  const std::vector<float> out_rounded = to_float(out_bits);
  std::vector<float> dq_ref(c.q_elems()), dk_ref(c.kv_elems()), dv_ref(c.kv_elems());
  iris::cpu::attention_backward(dq_ref.data(), dk_ref.data(), dv_ref.data(), in.dout.values.data(),
                                in.q.values.data(), in.k.values.data(), in.v.values.data(), out_rounded.data(),
                                lse_ref.data(), doc_host, c.B, c.T, c.NH, c.NKV, c.HS);

  DeviceBuffer<bf16> q(in.q.bits), k(in.k.bits), v(in.v.bits), dout(in.dout.bits), out(out_bits);
  DeviceBuffer<float> lse(lse_ref);
  DeviceBuffer<bf16> dq(c.q_elems()), dk(c.kv_elems()), dv(c.kv_elems());
  std::optional<DeviceBuffer<int32_t>> doc;
  if (c.doc) doc.emplace(in.doc);
  run_backward(impl, dq.get(), dk.get(), dv.get(), dout.get(), q.get(), k.get(), v.get(), out.get(), lse.get(),
               doc ? doc->get() : nullptr, c);
  expect_close("dq (bf16)", to_float(dq.download()), dq_ref, kBf16Atol, kBf16Rtol, kBf16RelL2);
  expect_close("dk (bf16)", to_float(dk.download()), dk_ref, kBf16Atol, kBf16Rtol, kBf16RelL2);
  expect_close("dv (bf16)", to_float(dv.download()), dv_ref, kBf16Atol, kBf16Rtol, kBf16RelL2);
}

TEST(GpuAttention, ForwardMatchesCpu) {
  IRIS_REQUIRE_GPU();
  for (const AttentionCase& c : sweep()) check_forward(Impl::kTensorCores, c);
}

TEST(GpuAttention, BackwardMatchesCpu) {
  IRIS_REQUIRE_GPU();
  for (const AttentionCase& c : sweep()) check_backward(Impl::kTensorCores, c);
}

// The register-resident mma.sync kernels (opt-in, IRIS_ATTENTION=mma), same sweep and tolerances, plus 16
// tiles with documents. The backward reads the CPU forward's lse and out, as check_backward gives them.
TEST(GpuAttention, MmaForwardMatchesCpu) {
  IRIS_REQUIRE_GPU();
  if (!iris::cuda::detail::attention_mma_fits(128, /*backward=*/false))
    GTEST_SKIP() << "this GPU gives a block too little shared memory for the mma kernels at head size 128";
  for (const AttentionCase& c : sweep()) check_forward(Impl::kMma, c);
  for (int HS : {64, 128}) check_forward(Impl::kMma, {1, 1000, 8, 1, HS, true});
  EXPECT_THROW(iris::cuda::detail::attention_forward_mma(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1, 8,
                                                         4, 2, 96, nullptr),
               std::invalid_argument)
      << "head size 96 has no mma kernel";
}

TEST(GpuAttention, MmaBackwardMatchesCpu) {
  IRIS_REQUIRE_GPU();
  if (!iris::cuda::detail::attention_mma_fits(128, /*backward=*/true))
    GTEST_SKIP() << "this GPU gives a block too little shared memory for the mma kernels at head size 128";
  for (const AttentionCase& c : sweep()) check_backward(Impl::kMma, c);
  for (int HS : {64, 128}) check_backward(Impl::kMma, {1, 1000, 8, 1, HS, true});
}

// The SIMT kernels: the fallback for other head sizes, and a second GPU opinion when a tensor-core case fails.
TEST(GpuAttention, SimtForwardMatchesCpu) {
  IRIS_REQUIRE_GPU();
  for (const AttentionCase& c : sweep()) check_forward(Impl::kSimt, c);
  check_forward(Impl::kSimt, {1, 70, 4, 2, 96, true});  // a head size only the SIMT path serves
}

TEST(GpuAttention, SimtBackwardMatchesCpu) {
  IRIS_REQUIRE_GPU();
  for (const AttentionCase& c : sweep()) check_backward(Impl::kSimt, c);
  check_backward(Impl::kSimt, {1, 70, 4, 2, 96, true});
}

// Many tiles (16 of them, the last partial) with packed documents, where whole key tiles are hidden from rows.
TEST(GpuAttention, LongSequenceWithDocuments) {
  IRIS_REQUIRE_GPU();
  for (int HS : {64, 128}) {
    check_forward(Impl::kTensorCores, {1, 1000, 8, 1, HS, true});
    check_backward(Impl::kTensorCores, {1, 1000, 8, 1, HS, true});
  }
}

// No atomics anywhere: two runs of the backward give the same bits (dk/dv add their 8 query heads in order),
// with the wmma kernels and with the mma ones.
TEST(GpuAttention, BackwardIsDeterministic) {
  IRIS_REQUIRE_GPU();
  const AttentionCase c{2, 257, 16, 2, 128, true};
  const AttentionInputs in = make_inputs(c, 7);
  DeviceBuffer<bf16> q(in.q.bits), k(in.k.bits), v(in.v.bits), dout(in.dout.bits), out(c.q_elems());
  DeviceBuffer<float> lse(static_cast<size_t>(c.B) * c.NH * c.T);
  DeviceBuffer<int32_t> doc(in.doc);
  run_forward(Impl::kTensorCores, out.get(), lse.get(), q.get(), k.get(), v.get(), doc.get(), c);
  for (Impl impl : {Impl::kTensorCores, Impl::kMma}) {
    if (impl == Impl::kMma && !iris::cuda::detail::attention_mma_fits(c.HS, /*backward=*/true)) continue;
    std::vector<std::vector<bf16>> runs[2];
    for (auto& grads : runs) {
      DeviceBuffer<bf16> dq(c.q_elems()), dk(c.kv_elems()), dv(c.kv_elems());
      run_backward(impl, dq.get(), dk.get(), dv.get(), dout.get(), q.get(), k.get(), v.get(), out.get(), lse.get(),
                   doc.get(), c);
      grads = {dq.download(), dk.download(), dv.download()};
    }
    const char* names[] = {"dq", "dk", "dv"};
    for (int t = 0; t < 3; ++t)
      EXPECT_EQ(0, std::memcmp(runs[0][t].data(), runs[1][t].data(), runs[0][t].size() * sizeof(bf16)))
          << names[t] << " differs between two identical backward runs ("
          << (impl == Impl::kMma ? "mma" : "wmma") << " kernels)";
  }
}

// Shape errors are reported before anything reaches the GPU, so this runs without one.
TEST(GpuAttention, RejectsUnsupportedShapes) {
  EXPECT_THROW(iris::cuda::attention_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1, 8, 4, 2, 48,
                                             nullptr),
               std::invalid_argument);
  EXPECT_THROW(iris::cuda::attention_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                              nullptr, nullptr, nullptr, 1, 8, 6, 4, 64, nullptr),
               std::invalid_argument);
}

}  // namespace
