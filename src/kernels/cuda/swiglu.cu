// SwiGLU kernels, fp32 math per element: silu(x) = x·σ(x), d silu/dx = σ(x)·(1 + x·(1 − σ(x))). Bandwidth
// bound: each thread moves 8 elements with 16-byte loads and stores where the buffers are aligned, the
// n % 8 rest (or everything, when not aligned) one element per thread; the math is the same either way.
#include "src/kernels/cuda/swiglu.cuh"

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ bf16 swiglu(float x, float u) { return __float2bfloat16_rn(x * sigmoid(x) * u); }
__device__ __forceinline__ void swiglu_grad(bf16& dgate, bf16& dup, float dy, float x, float u) {
  const float s = sigmoid(x);
  dgate = __float2bfloat16_rn(dy * u * s * (1.0f + x * (1.0f - s)));
  dup = __float2bfloat16_rn(dy * x * s);
}

static __global__ void swiglu_forward_kernel(bf16* out, const bf16* gate, const bf16* up, size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = swiglu(__bfloat162float(gate[i]), __bfloat162float(up[i]));
}

static __global__ void swiglu_forward_x8_kernel(Bf16x8* out, const Bf16x8* gate, const Bf16x8* up, size_t vecs) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < vecs;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const Bf16x8 g = gate[i], u = up[i];
    Bf16x8 o;
#pragma unroll
    for (int e = 0; e < 8; ++e) o.v[e] = swiglu(__bfloat162float(g.v[e]), __bfloat162float(u.v[e]));
    out[i] = o;
  }
}

static __global__ void swiglu_backward_kernel(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate,
                                              const bf16* up, size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    swiglu_grad(dgate[i], dup[i], __bfloat162float(dout[i]), __bfloat162float(gate[i]), __bfloat162float(up[i]));
}

static __global__ void swiglu_backward_x8_kernel(Bf16x8* dgate, Bf16x8* dup, const Bf16x8* dout, const Bf16x8* gate,
                                                 const Bf16x8* up, size_t vecs) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < vecs;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const Bf16x8 dy = dout[i], g = gate[i], u = up[i];
    Bf16x8 dg, du;
#pragma unroll
    for (int e = 0; e < 8; ++e)
      swiglu_grad(dg.v[e], du.v[e], __bfloat162float(dy.v[e]), __bfloat162float(g.v[e]), __bfloat162float(u.v[e]));
    dgate[i] = dg;
    dup[i] = du;
  }
}

}  // namespace

void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int N, int F, cudaStream_t stream) {
  const size_t total = static_cast<size_t>(N) * F;
  if (total == 0) return;
  const size_t vecs = aligned16({out, gate, up}) ? total / 8 : 0, done = 8 * vecs;
  if (vecs > 0) {
    swiglu_forward_x8_kernel<<<elementwise_blocks(vecs, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<Bf16x8*>(out), reinterpret_cast<const Bf16x8*>(gate), reinterpret_cast<const Bf16x8*>(up),
        vecs);
    IRIS_CUDA_CHECK_LAUNCH();
  }
  if (done < total) {
    swiglu_forward_kernel<<<elementwise_blocks(total - done, kThreads), kThreads, 0, stream>>>(
        out + done, gate + done, up + done, total - done);
    IRIS_CUDA_CHECK_LAUNCH();
  }
}

void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int N, int F,
                     cudaStream_t stream) {
  const size_t total = static_cast<size_t>(N) * F;
  if (total == 0) return;
  const size_t vecs = aligned16({dgate, dup, dout, gate, up}) ? total / 8 : 0, done = 8 * vecs;
  if (vecs > 0) {
    swiglu_backward_x8_kernel<<<elementwise_blocks(vecs, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<Bf16x8*>(dgate), reinterpret_cast<Bf16x8*>(dup), reinterpret_cast<const Bf16x8*>(dout),
        reinterpret_cast<const Bf16x8*>(gate), reinterpret_cast<const Bf16x8*>(up), vecs);
    IRIS_CUDA_CHECK_LAUNCH();
  }
  if (done < total) {
    swiglu_backward_kernel<<<elementwise_blocks(total - done, kThreads), kThreads, 0, stream>>>(
        dgate + done, dup + done, dout + done, gate + done, up + done, total - done);
    IRIS_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace iris::cuda
