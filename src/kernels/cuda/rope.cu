// RoPE kernels: one thread per (row, head, pair i < HS/2), rotating the pair (x[i], x[i + HS/2]) in fp32.
#include "src/kernels/cuda/rope.cuh"

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;

static __global__ void rope_tables_kernel(float* cos_out, float* sin_out, const int32_t* pos, const float* inv_freq,
                                          int half, size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t n = i / half;
    const int f = static_cast<int>(i % half);
    const float angle = static_cast<float>(pos[n]) * inv_freq[f];  // fp32 product, as HF and the CPU op
    cos_out[i] = static_cast<float>(cos(static_cast<double>(angle)));
    sin_out[i] = static_cast<float>(sin(static_cast<double>(angle)));
  }
}

// sign = +1 forward, −1 backward (rotation by −θ).
static __global__ void rope_kernel(bf16* x, const float* cos_t, const float* sin_t, int H, int half, float sign,
                                   size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int f = static_cast<int>(i % half);
    const size_t head = i / half;  // n·H + h
    const size_t n = head / H;
    bf16* lo = x + head * 2 * half;
    bf16* hi = lo + half;
    const float c = cos_t[n * half + f], s = sign * sin_t[n * half + f];
    const float a = __bfloat162float(lo[f]), b = __bfloat162float(hi[f]);
    lo[f] = __float2bfloat16_rn(a * c - b * s);
    hi[f] = __float2bfloat16_rn(b * c + a * s);
  }
}

void rotate(bf16* x, const float* cos, const float* sin, int N, int H, int HS, float sign, cudaStream_t stream) {
  IRIS_CUDA_REQUIRE(HS % 2 == 0, "RoPE needs an even head size");
  const size_t total = static_cast<size_t>(N) * H * (HS / 2);
  if (total == 0) return;
  rope_kernel<<<elementwise_blocks(total, kThreads), kThreads, 0, stream>>>(x, cos, sin, H, HS / 2, sign, total);
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rope_tables(float* cos, float* sin, const int32_t* pos, const float* inv_freq, int N, int HS,
                 cudaStream_t stream) {
  IRIS_CUDA_REQUIRE(HS % 2 == 0, "RoPE needs an even head size");
  const size_t total = static_cast<size_t>(N) * (HS / 2);
  if (total == 0) return;
  rope_tables_kernel<<<elementwise_blocks(total, kThreads), kThreads, 0, stream>>>(cos, sin, pos, inv_freq, HS / 2,
                                                                                   total);
  IRIS_CUDA_CHECK_LAUNCH();
}

void rope_forward(bf16* x, const float* cos, const float* sin, int N, int H, int HS, cudaStream_t stream) {
  rotate(x, cos, sin, N, H, HS, 1.0f, stream);
}

void rope_backward(bf16* dx, const float* cos, const float* sin, int N, int H, int HS, cudaStream_t stream) {
  rotate(dx, cos, sin, N, H, HS, -1.0f, stream);
}

}  // namespace iris::cuda
