// Decode attention: one new query per sequence over that sequence's KV cache (the incremental step of
// generation, docs/design.md decision 3: the CPU op is the reference for the CUDA kernel of the same name).
// Same conventions as ops.h: outputs first, fp32, row-major, GQA query head h reads KV head h / (NH / NKV).
#pragma once
#include <cstdint>

namespace iris::cpu {

// out (B, NH, HS) = softmax(q·K^T / sqrt(HS)) · V per query row b and query head h, over the cached keys
// and values j < lengths[b] of cache slot s = slot[b] (slot == nullptr: s = b), KV head h / (NH / NKV).
// q (B, NH, HS); k_cache, v_cache (slots, NKV, T_max, HS): slot s holds its sequence's keys (after RoPE) and
// values, position j at row j. lengths (B,) in [1, T_max] include the query's own position (its key and
// value are written before the call), so the query sees itself and everything before it, and nothing of
// another sequence.
void decode_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                              const int32_t* slot, const int32_t* lengths, int B, int NH, int NKV, int HS, int T_max);

}  // namespace iris::cpu
