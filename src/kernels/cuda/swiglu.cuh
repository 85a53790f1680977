// SwiGLU activation (Shazeer 2020) on the GPU; reference: cpu::swiglu_forward / swiglu_backward. All bf16.
#pragma once
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// out (N, F) = silu(gate) · up, gate and up (N, F)
void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int N, int F, cudaStream_t stream);
// dgate, dup (N, F) written; dout, gate, up (N, F)
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int N, int F,
                     cudaStream_t stream);

}  // namespace iris::cuda
