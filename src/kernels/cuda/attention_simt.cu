// The SIMT attention kernels (attention_detail.cuh): one warp per query row (forward, dq) or key row
// (dk, dv), fp32 math, no tensor cores. The fallback for head sizes and alignments the tensor-core kernels
// of attention.cu do not cover, and the second GPU implementation its test compares against.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "src/kernels/cuda/attention_detail.cuh"
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {
namespace {

using bf16 = __nv_bfloat16;

// ---- SIMT kernels (detail::*_simt): one warp per row, lane l owns dims l, l + 32, ... -----------------------
constexpr int kMaxPerLane = 8;  // HS ≤ 256

__device__ __forceinline__ float simt_dot(const float (&x)[kMaxPerLane], const bf16* y, int HS) {
  float acc = 0.0f;
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u)
    if (32 * u < HS) acc += x[u] * __bfloat162float(y[threadIdx.x + 32 * u]);
  return warp_sum(acc);
}
__device__ __forceinline__ void simt_load(float (&x)[kMaxPerLane], const bf16* src, int HS) {
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) x[u] = 32 * u < HS ? __bfloat162float(src[threadIdx.x + 32 * u]) : 0.0f;
}
__device__ __forceinline__ void simt_store(bf16* dst, const float (&x)[kMaxPerLane], int HS, float s) {
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u)
    if (32 * u < HS) dst[threadIdx.x + 32 * u] = __float2bfloat16(x[u] * s);
}

// grid (T, NH, B), one warp: query row i, one key at a time with the online softmax.
__global__ void attention_forward_simt_kernel(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                                              const int32_t* doc, int T, int NH, int NKV, int HS, float scale) {
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kvh = h / (NH / NKV);
  const size_t qrow = (static_cast<size_t>(b) * T + i) * NH * HS + h * HS;
  const bf16* K = k + static_cast<size_t>(b) * T * NKV * HS + kvh * HS;  // row j at K + j·NKV·HS
  const bf16* V = v + static_cast<size_t>(b) * T * NKV * HS + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;
  float qi[kMaxPerLane], o[kMaxPerLane] = {};
  simt_load(qi, q + qrow, HS);
  float m = -INFINITY, l = 0.0f;
  for (int j = 0; j <= i; ++j) {
    if (D != nullptr && D[j] != D[i]) continue;
    const bf16* Vj = V + static_cast<size_t>(j) * NKV * HS;
    const float s = simt_dot(qi, K + static_cast<size_t>(j) * NKV * HS, HS) * scale;
    const float m_new = fmaxf(m, s), alpha = expf(m - m_new), p = expf(s - m_new);  // expf(−inf) = 0
    l = l * alpha + p;
#pragma unroll
    for (int u = 0; u < kMaxPerLane; ++u)
      if (32 * u < HS) o[u] = o[u] * alpha + p * __bfloat162float(Vj[threadIdx.x + 32 * u]);
    m = m_new;
  }
  simt_store(out + qrow, o, HS, 1.0f / l);
  if (threadIdx.x == 0) lse[(static_cast<size_t>(b) * NH + h) * T + i] = m + logf(l);
}

// grid (T, NH, B), one warp: dq_i = Σ_j dS_ij k_j.
__global__ void attention_backward_dq_simt_kernel(bf16* dq, const bf16* dout, const bf16* q, const bf16* k,
                                                  const bf16* v, const bf16* out, const float* lse,
                                                  const int32_t* doc, int T, int NH, int NKV, int HS,
                                                  float scale) {
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kvh = h / (NH / NKV);
  const size_t qrow = (static_cast<size_t>(b) * T + i) * NH * HS + h * HS;
  const bf16* K = k + static_cast<size_t>(b) * T * NKV * HS + kvh * HS;
  const bf16* V = v + static_cast<size_t>(b) * T * NKV * HS + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;
  float qi[kMaxPerLane], doi[kMaxPerLane], oi[kMaxPerLane], acc[kMaxPerLane] = {};
  simt_load(qi, q + qrow, HS);
  simt_load(doi, dout + qrow, HS);
  simt_load(oi, out + qrow, HS);
  float delta = 0.0f;
#pragma unroll
  for (int u = 0; u < kMaxPerLane; ++u) delta += doi[u] * oi[u];
  delta = warp_sum(delta);
  const float lse_i = lse[(static_cast<size_t>(b) * NH + h) * T + i];
  for (int j = 0; j <= i; ++j) {
    if (D != nullptr && D[j] != D[i]) continue;
    const bf16* Kj = K + static_cast<size_t>(j) * NKV * HS;
    const float p = expf(simt_dot(qi, Kj, HS) * scale - lse_i);
    const float ds = p * (simt_dot(doi, V + static_cast<size_t>(j) * NKV * HS, HS) - delta) * scale;
#pragma unroll
    for (int u = 0; u < kMaxPerLane; ++u)
      if (32 * u < HS) acc[u] += ds * __bfloat162float(Kj[threadIdx.x + 32 * u]);
  }
  simt_store(dq + qrow, acc, HS, 1.0f);
}

// grid (T, NKV, B), one warp: key row j, dk_j = Σ_h Σ_i dS_ij q_i and dv_j = Σ_h Σ_i P_ij dout_i.
__global__ void attention_backward_dkdv_simt_kernel(bf16* dk, bf16* dv, const bf16* dout, const bf16* q,
                                                    const bf16* k, const bf16* v, const bf16* out,
                                                    const float* lse, const int32_t* doc, int T, int NH, int NKV,
                                                    int HS, float scale) {
  const int j = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z, group = NH / NKV;
  const size_t krow = (static_cast<size_t>(b) * T + j) * NKV * HS + kvh * HS;
  const int32_t* D = doc != nullptr ? doc + static_cast<size_t>(b) * T : nullptr;
  float kj[kMaxPerLane], vj[kMaxPerLane], dk_acc[kMaxPerLane] = {}, dv_acc[kMaxPerLane] = {};
  simt_load(kj, k + krow, HS);
  simt_load(vj, v + krow, HS);
  for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
    for (int i = j; i < T; ++i) {
      if (D != nullptr && D[j] != D[i]) continue;
      const size_t qrow = (static_cast<size_t>(b) * T + i) * NH * HS + h * HS;
      float doi[kMaxPerLane], oi[kMaxPerLane];
      simt_load(doi, dout + qrow, HS);
      simt_load(oi, out + qrow, HS);
      float delta = 0.0f;
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) delta += doi[u] * oi[u];
      delta = warp_sum(delta);
      const float p = expf(simt_dot(kj, q + qrow, HS) * scale - lse[(static_cast<size_t>(b) * NH + h) * T + i]);
      float dp = 0.0f;  // dout_i · v_j
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) dp += doi[u] * vj[u];
      const float ds = p * (warp_sum(dp) - delta) * scale;
#pragma unroll
      for (int u = 0; u < kMaxPerLane; ++u) {
        if (32 * u < HS) {
          dk_acc[u] += ds * __bfloat162float(q[qrow + threadIdx.x + 32 * u]);
          dv_acc[u] += p * doi[u];
        }
      }
    }
  }
  simt_store(dk + krow, dk_acc, HS, 1.0f);
  simt_store(dv + krow, dv_acc, HS, 1.0f);
}

}  // namespace

namespace detail {

void check_attention_shapes(int B, int T, int NH, int NKV, int HS, bool simt) {
  if (B < 0 || T < 0 || NH <= 0 || NKV <= 0 || NH % NKV != 0)
    throw std::invalid_argument("attention: need B, T ≥ 0 and NH a positive multiple of NKV; got B=" +
                                std::to_string(B) + " T=" + std::to_string(T) + " NH=" + std::to_string(NH) +
                                " NKV=" + std::to_string(NKV));
  const bool simt_ok = HS > 0 && HS % 32 == 0 && HS <= 32 * kMaxPerLane;
  if (simt ? !simt_ok : !(HS == 64 || HS == 128 || simt_ok))
    throw std::invalid_argument("attention: head size " + std::to_string(HS) +
                                " is not supported (64 and 128 on tensor cores, other multiples of 32 up to 256)");
}


float attention_softmax_scale(int HS) { return 1.0f / std::sqrt(static_cast<float>(HS)); }  // as the CPU op

void attention_forward_simt(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                            int B, int T, int NH, int NKV, int HS, cudaStream_t stream) {
  check_attention_shapes(B, T, NH, NKV, HS, /*simt=*/true);
  if (B == 0 || T == 0) return;
  attention_forward_simt_kernel<<<dim3(T, NH, B), 32, 0, stream>>>(out, lse, q, k, v, doc, T, NH, NKV, HS,
                                                                   attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
}

void attention_backward_simt(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                             const bf16* v, const bf16* out, const float* lse, const int32_t* doc, int B, int T,
                             int NH, int NKV, int HS, cudaStream_t stream) {
  check_attention_shapes(B, T, NH, NKV, HS, /*simt=*/true);
  if (B == 0 || T == 0) return;
  attention_backward_dq_simt_kernel<<<dim3(T, NH, B), 32, 0, stream>>>(dq, dout, q, k, v, out, lse, doc, T, NH,
                                                                       NKV, HS, attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
  attention_backward_dkdv_simt_kernel<<<dim3(T, NKV, B), 32, 0, stream>>>(dk, dv, dout, q, k, v, out, lse, doc, T,
                                                                          NH, NKV, HS, attention_softmax_scale(HS));
  IRIS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace detail

}  // namespace iris::cuda
