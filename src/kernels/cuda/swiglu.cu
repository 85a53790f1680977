// SwiGLU kernels, one thread per element, fp32 math: silu(x) = x·σ(x), d silu/dx = σ(x)·(1 + x·(1 − σ(x))).
#include "src/kernels/cuda/swiglu.cuh"

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static __global__ void swiglu_forward_kernel(bf16* out, const bf16* gate, const bf16* up, size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float x = __bfloat162float(gate[i]);
    out[i] = __float2bfloat16_rn(x * sigmoid(x) * __bfloat162float(up[i]));
  }
}

static __global__ void swiglu_backward_kernel(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate,
                                              const bf16* up, size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float x = __bfloat162float(gate[i]), u = __bfloat162float(up[i]), dy = __bfloat162float(dout[i]);
    const float s = sigmoid(x);
    dgate[i] = __float2bfloat16_rn(dy * u * s * (1.0f + x * (1.0f - s)));
    dup[i] = __float2bfloat16_rn(dy * x * s);
  }
}

}  // namespace

void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int N, int F, cudaStream_t stream) {
  const size_t total = static_cast<size_t>(N) * F;
  if (total == 0) return;
  swiglu_forward_kernel<<<elementwise_blocks(total, kThreads), kThreads, 0, stream>>>(out, gate, up, total);
  IRIS_CUDA_CHECK_LAUNCH();
}

void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int N, int F,
                     cudaStream_t stream) {
  const size_t total = static_cast<size_t>(N) * F;
  if (total == 0) return;
  swiglu_backward_kernel<<<elementwise_blocks(total, kThreads), kThreads, 0, stream>>>(dgate, dup, dout, gate, up,
                                                                                       total);
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace iris::cuda
