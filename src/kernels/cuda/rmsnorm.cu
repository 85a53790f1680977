// RMSNorm kernels. Forward and the input gradient: one block per row, fp32 sums. With g = dout·w:
// dx = rstd·g − rstd³·(Σ_c g·x)/C · x (the derivative of x·rstd(x), as in cpu/rmsnorm.cpp).
// Weight gradient: dw = Σ_n dout·x·rstd, one block per 32 columns; each of its warps sums a fixed
// stride of rows and the warps' sums are added in warp order, so the result never varies. The fp32
// total is added to the gradient once, so a bf16 gradient is rounded once per call, not once per row.
#include "src/kernels/cuda/rmsnorm.cuh"

namespace iris::cuda {
namespace {

constexpr int kRowThreads = 256;
constexpr int kDweightWarps = 32;  // warps per dweight block; lane = column within the block's 32

// One block per row. residual == nullptr: plain RMSNorm of inp. Otherwise x = bf16(residual + inp) is
// written to residual_out and normalised.
static __global__ void rmsnorm_forward_kernel(bf16* out, float* rstd, bf16* residual_out, const bf16* residual,
                                              const bf16* inp, const bf16* weight, int C, float eps) {
  __shared__ float scratch[kRowThreads / 32];
  const size_t row = static_cast<size_t>(blockIdx.x) * C;
  float ss = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float x;
    if (residual != nullptr) {
      const bf16 sum = __float2bfloat16_rn(__bfloat162float(residual[row + c]) + __bfloat162float(inp[row + c]));
      residual_out[row + c] = sum;
      x = __bfloat162float(sum);
    } else {
      x = __bfloat162float(inp[row + c]);
    }
    ss += x * x;
  }
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  // Each thread re-reads only the elements it wrote above, so residual_out needs no barrier.
  const bf16* x_row = (residual != nullptr ? residual_out : inp) + row;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    out[row + c] = __float2bfloat16_rn(__bfloat162float(x_row[c]) * r * __bfloat162float(weight[c]));
}

static __global__ void rmsnorm_backward_input_kernel(bf16* dinp, const bf16* dout, const bf16* inp,
                                                     const bf16* weight, const float* rstd, int C,
                                                     bool accumulate_dinp) {
  __shared__ float scratch[kRowThreads / 32];
  const size_t row = static_cast<size_t>(blockIdx.x) * C;
  float gx = 0.0f;  // Σ_c dout·w·x
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    gx += __bfloat162float(dout[row + c]) * __bfloat162float(weight[c]) * __bfloat162float(inp[row + c]);
  gx = block_sum(gx, scratch);
  const float r = rstd[blockIdx.x];
  const float coeff = r * r * r * gx / static_cast<float>(C);
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float dx = r * __bfloat162float(dout[row + c]) * __bfloat162float(weight[c]) -
               coeff * __bfloat162float(inp[row + c]);
    if (accumulate_dinp) dx += __bfloat162float(dinp[row + c]);
    dinp[row + c] = __float2bfloat16_rn(dx);
  }
}

__device__ inline void add_to_grad(float* g, float x) { *g += x; }
__device__ inline void add_to_grad(bf16* g, float x) { *g = __float2bfloat16_rn(__bfloat162float(*g) + x); }

// blockDim (32, kDweightWarps): threadIdx.x = column within the block's 32, threadIdx.y = warp.
template <typename GradT>
static __global__ void rmsnorm_backward_weight_kernel(GradT* dweight, const bf16* dout, const bf16* inp,
                                                      const float* rstd, int N, int C) {
  __shared__ float partial[kDweightWarps][32];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (c < C) {
    for (int n = threadIdx.y; n < N; n += kDweightWarps) {
      const size_t i = static_cast<size_t>(n) * C + c;
      acc += __bfloat162float(dout[i]) * __bfloat162float(inp[i]) * rstd[n];
    }
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float total = 0.0f;
    for (int w = 0; w < kDweightWarps; ++w) total += partial[w][threadIdx.x];
    add_to_grad(dweight + c, total);
  }
}

}  // namespace

void rmsnorm_forward(bf16* out, float* rstd, const bf16* inp, const bf16* weight, int N, int C, float eps,
                     cudaStream_t stream) {
  if (N == 0) return;
  rmsnorm_forward_kernel<<<N, kRowThreads, 0, stream>>>(out, rstd, nullptr, nullptr, inp, weight, C, eps);
  IRIS_CUDA_CHECK_LAUNCH();
}

void residual_rmsnorm_forward(bf16* residual_out, bf16* out, float* rstd, const bf16* residual, const bf16* inp,
                              const bf16* weight, int N, int C, float eps, cudaStream_t stream) {
  if (N == 0) return;
  rmsnorm_forward_kernel<<<N, kRowThreads, 0, stream>>>(out, rstd, residual_out, residual, inp, weight, C, eps);
  IRIS_CUDA_CHECK_LAUNCH();
}

namespace {
template <typename GradT>
void launch_rmsnorm_backward(bf16* dinp, GradT* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                             const float* rstd, int N, int C, bool accumulate_dinp, cudaStream_t stream) {
  if (N == 0) return;
  rmsnorm_backward_input_kernel<<<N, kRowThreads, 0, stream>>>(dinp, dout, inp, weight, rstd, C, accumulate_dinp);
  IRIS_CUDA_CHECK_LAUNCH();
  rmsnorm_backward_weight_kernel<<<ceil_div(C, 32), dim3(32, kDweightWarps), 0, stream>>>(dweight, dout, inp, rstd,
                                                                                          N, C);
  IRIS_CUDA_CHECK_LAUNCH();
}
}  // namespace

void rmsnorm_backward(bf16* dinp, float* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int N, int C, bool accumulate_dinp, cudaStream_t stream) {
  launch_rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C, accumulate_dinp, stream);
}

void rmsnorm_backward(bf16* dinp, bf16* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int N, int C, bool accumulate_dinp, cudaStream_t stream) {
  launch_rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C, accumulate_dinp, stream);
}

}  // namespace iris::cuda
