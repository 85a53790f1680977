// Whole-buffer GPU helpers: sum of squares (global grad norm), fp32 ↔ bf16 casts, add and scale.
// References: cpu::sum_squares / add_inplace / scale_inplace and iris::float_to_bf16 (src/core/dtype.h).
#pragma once
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// Blocks of the first sum_squares pass; `partials` must hold this many doubles.
inline constexpr int kSumSquaresPartials = 1024;

// out (1,) device double = Σ x² accumulated in double; partials (kSumSquaresPartials,) device scratch.
// Deterministic: a fixed grid and fixed reduction trees, independent of the GPU model.
void sum_squares(double* out, double* partials, const float* x, size_t n, cudaStream_t stream);
void sum_squares(double* out, double* partials, const bf16* x, size_t n, cudaStream_t stream);

// out (n) = bf16(inp), round to nearest even;  out (n) = float(inp), exact.
void cast_f32_to_bf16(bf16* out, const float* inp, size_t n, cudaStream_t stream);
void cast_bf16_to_f32(float* out, const bf16* inp, size_t n, cudaStream_t stream);

// a (n) += b (n);  x (n) *= s  (fp32)
void add_inplace(float* a, const float* b, size_t n, cudaStream_t stream);
void scale_inplace(float* x, float s, size_t n, cudaStream_t stream);
// out (n) = bf16(float(a) + float(b)): the residual add of the bf16 model stage; out may alias a or b.
void add_bf16(bf16* out, const bf16* a, const bf16* b, size_t n, cudaStream_t stream);

}  // namespace iris::cuda
