// RMSNorm (Zhang & Sennrich 2019) on the GPU; reference: cpu::rmsnorm_forward / rmsnorm_backward.
// bf16 activations and weight, fp32 statistics (rstd); the weight gradient (+=) is fp32 or bf16
// (train.grad_dtype): either way it is summed over the rows in fp32 and added to dweight once per element.
#pragma once
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// out (N, C) bf16, rstd (N,) fp32, inp (N, C) bf16, weight (C,) bf16; rstd = 1/sqrt(mean(inp²) + eps)
void rmsnorm_forward(bf16* out, float* rstd, const bf16* inp, const bf16* weight, int N, int C, float eps,
                     cudaStream_t stream);
// Pre-norm block entry fused with the residual add: residual_out (N, C) = residual + inp, rounded to
// bf16, then out = rmsnorm(residual_out) with the statistics of the rounded values (what backward sees).
// residual_out may alias residual or inp.
void residual_rmsnorm_forward(bf16* residual_out, bf16* out, float* rstd, const bf16* residual, const bf16* inp,
                              const bf16* weight, int N, int C, float eps, cudaStream_t stream);
// dinp (N, C) bf16 written, or added to when accumulate_dinp (the residual stream's gradient: the residual
// add passes it through unchanged, so the norm's input gradient adds to it); dweight (C,) fp32 +=.
// Deterministic: dweight sums rows in a fixed order without atomics.
void rmsnorm_backward(bf16* dinp, float* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int N, int C, bool accumulate_dinp, cudaStream_t stream);
// The same with a bf16 dweight (C,) +=: dweight = bf16(float(dweight) + the fp32 row sum), one rounding
// per call.
void rmsnorm_backward(bf16* dinp, bf16* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int N, int C, bool accumulate_dinp, cudaStream_t stream);

}  // namespace iris::cuda
