// Rotary position embedding (Su et al. 2021) on the GPU in HF's rotate-half layout; reference:
// cpu::rope_tables / rope_forward / rope_backward. Tables fp32, q and k bf16, rotated in place.
#pragma once
#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// cos, sin (N, HS/2) fp32: angle = pos[n] · inv_freq[i] rounded to fp32, cos/sin in double then rounded.
void rope_tables(float* cos, float* sin, const int32_t* pos, const float* inv_freq, int N, int HS,
                 cudaStream_t stream);
// x (N, H, HS) bf16 in place: x'[i] = x[i]·cos[i] − x[i+h]·sin[i]; x'[i+h] = x[i+h]·cos[i] + x[i]·sin[i], h = HS/2
void rope_forward(bf16* x, const float* cos, const float* sin, int N, int H, int HS, cudaStream_t stream);
// dx (N, H, HS) bf16 in place: the inverse rotation (angle −θ), the transpose of the forward map.
void rope_backward(bf16* dx, const float* cos, const float* sin, int N, int H, int HS, cudaStream_t stream);

}  // namespace iris::cuda
