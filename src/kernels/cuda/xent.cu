// Vocab-parallel softmax cross-entropy phases (Megatron-LM, Shoeybi et al. 2019, sec. 3) on bf16 logits: one
// block per row, 16-byte loads when the rows allow them, fp32 math, block reductions in a fixed order (so the
// results are deterministic). Backward turns each bf16 logit into its bf16 gradient in one read-then-write.
#include <cmath>
#include <stdexcept>
#include <string>

#include "src/kernels/cuda/xent.cuh"
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {
namespace {


using bf16 = __nv_bfloat16;
constexpr int kThreads = 256;
constexpr int kVec = 8;  // bf16 per 16-byte load


// Max or sum over the block; the result is valid in thread 0. Call once per kernel (one shared array).
template <bool kIsMax>
__device__ float block_reduce(float x) {
  __shared__ float partial[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  x = kIsMax ? warp_max(x) : warp_sum(x);
  if (lane == 0) partial[warp] = x;
  __syncthreads();
  if (warp == 0) {
    x = lane < kThreads / 32 ? partial[lane] : (kIsMax ? -INFINITY : 0.0f);
    x = kIsMax ? warp_max(x) : warp_sum(x);
  }
  return x;
}

// f(column, logit) for every column < count of one row, each column visited by exactly one thread.
template <bool kVectorised, typename F>
__device__ void for_each_column(const bf16* row, int count, F&& f) {
  int scalar_begin = 0;
  if constexpr (kVectorised) {
    const int chunks = count / kVec;
    for (int c = threadIdx.x; c < chunks; c += kThreads) {
      const uint4 raw = reinterpret_cast<const uint4*>(row)[c];
      const bf16* x = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
      for (int e = 0; e < kVec; ++e) f(c * kVec + e, __bfloat162float(x[e]));
    }
    scalar_begin = chunks * kVec;
  }
  for (int v = scalar_begin + threadIdx.x; v < count; v += kThreads) f(v, __bfloat162float(row[v]));
}

// grid (N,): max (N,) over the first V_valid columns of each row of logits (N, V_local).
template <bool kVectorised>
__global__ void __launch_bounds__(kThreads) xent_local_max_kernel(float* max, const bf16* logits, int V_local,
                                                                  int V_valid) {
  const bf16* row = logits + static_cast<size_t>(blockIdx.x) * V_local;
  float m = -INFINITY;
  for_each_column<kVectorised>(row, V_valid, [&](int, float l) { m = fmaxf(m, l); });
  m = block_reduce<true>(m);
  if (threadIdx.x == 0) max[blockIdx.x] = m;
}

// grid (N,): sumexp (N,) = Σ_valid exp(l − max); target_logit (N,) as in xent.cuh.
template <bool kVectorised>
__global__ void __launch_bounds__(kThreads) xent_local_sumexp_kernel(float* sumexp, float* target_logit,
                                                                     const bf16* logits, const float* max,
                                                                     const int32_t* targets, int V_local,
                                                                     int V_valid, int vocab_start) {
  const int n = blockIdx.x;
  const bf16* row = logits + static_cast<size_t>(n) * V_local;
  const float m = max[n];
  float s = 0.0f;
  for_each_column<kVectorised>(row, V_valid, [&](int, float l) { s += __expf(l - m); });
  s = block_reduce<false>(s);
  if (threadIdx.x == 0) {
    sumexp[n] = s;
    const int t = targets[n] - vocab_start;
    target_logit[n] = (t >= 0 && t < V_valid) ? __bfloat162float(row[t]) : 0.0f;
  }
}

__global__ void xent_losses_kernel(float* losses, const float* max, const float* sumexp, const float* target_logit,
                                   int N) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n < N) losses[n] = logf(sumexp[n]) + max[n] - target_logit[n];
}

// grid (N,): dlogits = dloss · (exp(l − max) / sumexp − [v = target]) over all V_local columns, 0 where padded.
// No __restrict__: dlogits may alias logits, and each element is read before the same thread writes it.
template <bool kVectorised>
__global__ void __launch_bounds__(kThreads) xent_backward_kernel(bf16* dlogits, const bf16* logits,
                                                                 const float* max, const float* sumexp,
                                                                 const int32_t* targets, const float* dloss,
                                                                 int V_local, int V_valid, int vocab_start) {
  const int n = blockIdx.x;
  const size_t offset = static_cast<size_t>(n) * V_local;
  const float m = max[n], w = dloss[n], scale = w / sumexp[n];
  const int t = targets[n] - vocab_start;  // a column of this shard only when in [0, V_valid)
  auto grad = [&](int v, float l) {
    if (v >= V_valid) return 0.0f;
    const float g = scale * __expf(l - m);
    return v == t ? g - w : g;
  };
  int scalar_begin = 0;
  if constexpr (kVectorised) {
    const int chunks = V_local / kVec;
    for (int c = threadIdx.x; c < chunks; c += kThreads) {
      uint4 raw = reinterpret_cast<const uint4*>(logits + offset)[c];
      bf16* x = reinterpret_cast<bf16*>(&raw);
#pragma unroll
      for (int e = 0; e < kVec; ++e) x[e] = __float2bfloat16(grad(c * kVec + e, __bfloat162float(x[e])));
      reinterpret_cast<uint4*>(dlogits + offset)[c] = raw;
    }
    scalar_begin = chunks * kVec;
  }
  for (int v = scalar_begin + threadIdx.x; v < V_local; v += kThreads)
    dlogits[offset + v] = __float2bfloat16(grad(v, __bfloat162float(logits[offset + v])));
}

void check_shapes(int N, int V_local, int V_valid) {
  if (N < 0 || V_local < 0 || V_valid < 0 || V_valid > V_local)
    throw std::invalid_argument("xent: need N ≥ 0 and 0 ≤ V_valid ≤ V_local; got N=" + std::to_string(N) +
                                " V_local=" + std::to_string(V_local) + " V_valid=" + std::to_string(V_valid));
}

// 16-byte loads need every row to start 16-byte aligned.
bool vectorisable(int V_local, const void* a, const void* b = nullptr) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return V_local % kVec == 0 && aligned(a) && (b == nullptr || aligned(b));
}

}  // namespace

void xent_local_max(float* max, const bf16* logits, int N, int V_local, int V_valid, cudaStream_t stream) {
  check_shapes(N, V_local, V_valid);
  if (N == 0) return;
  if (vectorisable(V_local, logits))
    xent_local_max_kernel<true><<<N, kThreads, 0, stream>>>(max, logits, V_local, V_valid);
  else
    xent_local_max_kernel<false><<<N, kThreads, 0, stream>>>(max, logits, V_local, V_valid);
  IRIS_CUDA_CHECK(cudaGetLastError());
}

void xent_local_sumexp(float* sumexp, float* target_logit, const bf16* logits, const float* max,
                       const int32_t* targets, int N, int V_local, int V_valid, int vocab_start,
                       cudaStream_t stream) {
  check_shapes(N, V_local, V_valid);
  if (N == 0) return;
  if (vectorisable(V_local, logits))
    xent_local_sumexp_kernel<true><<<N, kThreads, 0, stream>>>(sumexp, target_logit, logits, max, targets, V_local,
                                                               V_valid, vocab_start);
  else
    xent_local_sumexp_kernel<false><<<N, kThreads, 0, stream>>>(sumexp, target_logit, logits, max, targets,
                                                                V_local, V_valid, vocab_start);
  IRIS_CUDA_CHECK(cudaGetLastError());
}

void xent_losses(float* losses, const float* max, const float* sumexp, const float* target_logit, int N,
                 cudaStream_t stream) {
  if (N <= 0) return;
  xent_losses_kernel<<<(N + kThreads - 1) / kThreads, kThreads, 0, stream>>>(losses, max, sumexp, target_logit, N);
  IRIS_CUDA_CHECK(cudaGetLastError());
}

void xent_backward(bf16* dlogits, const bf16* logits, const float* max, const float* sumexp, const int32_t* targets,
                   const float* dloss, int N, int V_local, int V_valid, int vocab_start, cudaStream_t stream) {
  check_shapes(N, V_local, V_valid);
  if (N == 0) return;
  if (vectorisable(V_local, logits, dlogits))
    xent_backward_kernel<true><<<N, kThreads, 0, stream>>>(dlogits, logits, max, sumexp, targets, dloss, V_local,
                                                           V_valid, vocab_start);
  else
    xent_backward_kernel<false><<<N, kThreads, 0, stream>>>(dlogits, logits, max, sumexp, targets, dloss, V_local,
                                                            V_valid, vocab_start);
  IRIS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace iris::cuda
