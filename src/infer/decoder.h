// What the generation loop (generator.cpp) needs from a backend: prefill a prompt into a cache slot, advance
// several slots by one token, and each slot's length. CpuDecoder (fp32, any tp) and CudaDecoder (bf16 weights
// and activations, fp32 logits, one GPU) implement it.
#pragma once
#include <cstdint>

namespace iris::infer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // logits (V,) of the last prompt position; slot `slot` then holds positions [0, T) of tokens (T,).
  virtual void prefill(float* logits, int slot, const int32_t* tokens, int T) = 0;
  // logits (B, V): token tokens[b] at position length(slot[b]) of sequence slot[b], appended to its cache.
  virtual void decode(float* logits, const int32_t* slot, const int32_t* tokens, int B) = 0;
  virtual int length(int slot) const = 0;
  virtual int slots() const = 0;
  virtual int max_positions() const = 0;  // T_max of the cache
};

}  // namespace iris::infer
