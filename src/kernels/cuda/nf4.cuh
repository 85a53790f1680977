// NF4 dequantization on the GPU (bitsandbytes' layout, src/kernels/cpu/quantize.h); reference:
// cpu::nf4_dequantize. The fp32 values equal the CPU's bit for bit; the bf16 output is their rounding.
#pragma once
#include <cstdint>

#include "src/kernels/cuda/common.cuh"

namespace iris::cuda {

// out (n) = nf4_code[code of element i] · absmax of block i / 64, where block b's absmax is
// dynamic_map[absmax_code[b]] · nested_absmax[b / 256] + offset.
// packed (ceil(n / 2)): element 2i in the high nibble  absmax_code (ceil(n / 64))
// nested_absmax (ceil(n / 16384))  nf4_code (16) and dynamic_map (256): host arrays, passed by value.
void nf4_dequantize(float* out, const uint8_t* packed, const uint8_t* absmax_code, const float* nested_absmax,
                    float offset, const float* nf4_code, const float* dynamic_map, size_t n, cudaStream_t stream);
void nf4_dequantize(bf16* out, const uint8_t* packed, const uint8_t* absmax_code, const float* nested_absmax,
                    float offset, const float* nf4_code, const float* dynamic_map, size_t n, cudaStream_t stream);

}  // namespace iris::cuda
