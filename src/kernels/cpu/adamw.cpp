// AdamW (Loshchilov & Hutter 2019, alg. 2) with torch.optim.AdamW's bias correction and decoupled decay:
// p ← p·(1 − lr·wd) − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps), where g = grad·grad_scale
// (the clipping factor) and m, v are the updated first and second moments.
#include <cmath>

#include "src/kernels/cpu/ops.h"

namespace iris::cpu {

void adamw_update(float* params, float* m, float* v, const float* grads, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int step, float grad_scale) {
  // params, m, v, grads (n,)
  const double bias1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const float step_size = static_cast<float>(lr / bias1);
  const float sqrt_bias2 = static_cast<float>(std::sqrt(bias2));
  const float decay = 1.0f - lr * weight_decay;
#pragma omp parallel for simd schedule(static) if (n >= (1 << 15))
  for (size_t i = 0; i < n; ++i) {
    const float g = grads[i] * grad_scale;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = params[i] * decay - step_size * mi / (std::sqrt(vi) / sqrt_bias2 + eps);
  }
}

}  // namespace iris::cpu
