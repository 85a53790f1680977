// Fused AdamW (Loshchilov & Hutter 2019) over the flat fp32 master buffer; reference: cpu::adamw_update.
// Also writes the bf16 copy of the updated weights that the forward pass reads.
#pragma once
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// params, m, v (n,) fp32 updated in place; params_bf16 (n,) = bf16(params) after the update (nullptr: skip);
// grads (n,) fp32 or bf16, multiplied by grad_scale (the clipping factor). step ≥ 1.
void adamw_update(float* params, bf16* params_bf16, float* m, float* v, const float* grads, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale,
                  cudaStream_t stream);
void adamw_update(float* params, bf16* params_bf16, float* m, float* v, const bf16* grads, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale,
                  cudaStream_t stream);

}  // namespace iris::cuda
