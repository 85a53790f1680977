// AdamW with torch.optim.AdamW's bias correction and decoupled decay, the same formula as
// cpu/adamw.cpp: p ← p·(1 − lr·wd) − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps).
// The bias corrections are computed once on the host in double, exactly as the CPU op does.
#include <cmath>

#include "src/kernels/cuda/adamw.cuh"

namespace iris::cuda {
namespace {

constexpr int kThreads = 256;

template <typename GradT>
static __global__ void adamw_kernel(float* params, bf16* params_bf16, float* m, float* v, const GradT* grads,
                                    size_t n, float beta1, float beta2, float eps, float step_size,
                                    float sqrt_bias2, float decay, float grad_scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = to_float(grads[i]) * grad_scale;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float p = params[i] * decay - step_size * mi / (sqrtf(vi) / sqrt_bias2 + eps);
    params[i] = p;
    if (params_bf16 != nullptr) params_bf16[i] = __float2bfloat16_rn(p);
  }
}

template <typename GradT>
void launch(float* params, bf16* params_bf16, float* m, float* v, const GradT* grads, size_t n, float lr,
            float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale, cudaStream_t stream) {
  IRIS_CUDA_REQUIRE(step >= 1, "AdamW step counts from 1");
  if (n == 0) return;
  const double bias1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const float step_size = static_cast<float>(lr / bias1);
  const float sqrt_bias2 = static_cast<float>(std::sqrt(bias2));
  const float decay = 1.0f - lr * weight_decay;
  adamw_kernel<<<elementwise_blocks(n, kThreads), kThreads, 0, stream>>>(
      params, params_bf16, m, v, grads, n, beta1, beta2, eps, step_size, sqrt_bias2, decay, grad_scale);
  IRIS_CUDA_CHECK_LAUNCH();
}

}  // namespace

void adamw_update(float* params, bf16* params_bf16, float* m, float* v, const float* grads, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale,
                  cudaStream_t stream) {
  launch(params, params_bf16, m, v, grads, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale, stream);
}

void adamw_update(float* params, bf16* params_bf16, float* m, float* v, const bf16* grads, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale,
                  cudaStream_t stream) {
  launch(params, params_bf16, m, v, grads, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale, stream);
}

}  // namespace iris::cuda
