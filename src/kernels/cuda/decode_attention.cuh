// Decode attention on the GPU: one new query per sequence over its KV cache, bf16 in and out, fp32 softmax and
// accumulation. Same arguments as iris::cpu::decode_attention_forward (src/kernels/cpu/decode_attention.h, the
// reference) plus the stream.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace iris::cuda {

// out (B, NH, HS) = softmax(q·K^T / sqrt(HS)) · V over the cached positions j < lengths[b] of KV head
// h / (NH / NKV); q (B, NH, HS); k_cache, v_cache (B, NKV, T_max, HS); lengths (B,) device int32 in [1, T_max].
// HS 32, 64, 128 or 256.
void decode_attention_forward(__nv_bfloat16* out, const __nv_bfloat16* q, const __nv_bfloat16* k_cache,
                              const __nv_bfloat16* v_cache, const int32_t* lengths, int B, int NH, int NKV, int HS,
                              int T_max, cudaStream_t stream);

}  // namespace iris::cuda
