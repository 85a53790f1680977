// SwiGLU activation of the Llama MLP (Shazeer 2020, GLU variants): out = silu(gate) · up, silu(x) = x·σ(x).
// Backward uses σ'(x) = σ(x)(1 − σ(x)): d silu/dx = σ(x)·(1 + x·(1 − σ(x))).
#include "src/kernels/cpu/ops.h"
#include "src/kernels/cpu/vec_math.h"

namespace iris::cpu {

void swiglu_forward(float* out, const float* gate, const float* up, int N, int F) {
  // out, gate, up (N, F)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const size_t row = static_cast<size_t>(n) * F;
#pragma omp simd
    for (int f = 0; f < F; ++f) {
      const float x = gate[row + f];
      const float sigmoid = 1.0f / (1.0f + detail::fast_exp(-x));
      out[row + f] = x * sigmoid * up[row + f];
    }
  }
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int N, int F) {
  // dgate, dup (N, F) written; dout, gate, up (N, F)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const size_t row = static_cast<size_t>(n) * F;
#pragma omp simd
    for (int f = 0; f < F; ++f) {
      const float x = gate[row + f], u = up[row + f], dy = dout[row + f];
      const float sigmoid = 1.0f / (1.0f + detail::fast_exp(-x));
      dgate[row + f] = dy * u * sigmoid * (1.0f + x * (1.0f - sigmoid));
      dup[row + f] = dy * x * sigmoid;
    }
  }
}

}  // namespace iris::cpu
