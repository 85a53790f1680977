// Decode attention on the GPU: one new query per sequence over its KV cache, bf16 in and out, fp32 softmax and
// accumulation. Same arguments as iris::cpu::decode_attention_forward (src/kernels/cpu/decode_attention.h, the
// reference) plus the stream.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace iris::cuda {

// out (B, NH, HS) = softmax(q·K^T / sqrt(HS)) · V over the cached positions j < lengths[b] of cache slot
// slot[b] (slot == nullptr: b), KV head h / (NH / NKV); q (B, NH, HS); k_cache, v_cache (slots, NKV, T_max, HS);
// slot, lengths (B,) device int32, lengths in [1, T_max]. HS 32, 64, 128 or 256.
void decode_attention_forward(__nv_bfloat16* out, const __nv_bfloat16* q, const __nv_bfloat16* k_cache,
                              const __nv_bfloat16* v_cache, const int32_t* slot, const int32_t* lengths, int B, int NH,
                              int NKV, int HS, int T_max, cudaStream_t stream);

// Appends keys and values to the cache: row n of k_rows, v_rows (N, NKV, HS) goes to position pos[n] of slot
// slot[n] in k_cache, v_cache (slots, NKV, T_max, HS). slot, pos (N,) device int32.
void kv_cache_write(__nv_bfloat16* k_cache, __nv_bfloat16* v_cache, const __nv_bfloat16* k_rows,
                    const __nv_bfloat16* v_rows, const int32_t* slot, const int32_t* pos, int N, int NKV, int HS,
                    int T_max, cudaStream_t stream);

}  // namespace iris::cuda
