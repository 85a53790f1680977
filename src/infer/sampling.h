// Choosing the next token from a logits vector the way Hugging Face generate() does: greedy argmax, or
// sampling after the logits warpers in HF's order (temperature, then top-k, then top-p), from the
// counter-based RNG keyed by (seed, prompt, position) (src/core/rng.h), so a token depends only on its own
// sequence: a batch samples exactly what the same prompts give one at a time.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace iris::infer {

struct SamplingSettings {
  bool greedy = true;        // argmax; the fields below are unused
  float temperature = 1.0f;  // > 0; 1 leaves the logits as they are
  int top_k = 0;             // keep the k largest logits (ties with the k-th kept, as HF's TopKLogitsWarper); 0: all
  float top_p = 1.0f;        // keep the most likely tokens whose probabilities add up to top_p (nucleus); 1: all
  uint64_t seed = 0;
};

// The first index of the largest logit (torch.argmax's choice among equal maxima). logits (V,).
int32_t argmax_token(const float* logits, int V);

// probs (V,) = softmax of logits (V,) after temperature, top-k and top-p as HF's TemperatureLogitsWarper,
// TopKLogitsWarper and TopPLogitsWarper (min_tokens_to_keep = 1) apply them; removed tokens get 0.
// Computed in double. scratch is reused between calls.
void sampling_probabilities(float* probs, const float* logits, int V, const SamplingSettings& s,
                            std::vector<double>& scratch);

// The token whose cumulative probability interval [Σ_{j<i} p_j, Σ_{j≤i} p_j) holds u ∈ (0, 1); tokens of
// probability 0 are never chosen. probs (V,).
int32_t token_at_quantile(const float* probs, int V, double u);

// The RNG stream of a prompt: FNV-1a of its id (the input line's "id"), so sampling does not depend on
// where the prompt sits in the input or the batch.
uint64_t prompt_stream(std::string_view prompt_id);

// The next token of a sequence at absolute position `position` (the index the new token will have).
// Greedy: argmax. Otherwise token_at_quantile(sampling_probabilities(...), uniform(seed, stream, position)).
int32_t choose_token(const float* logits, int V, const SamplingSettings& s, uint64_t stream, int64_t position,
                     std::vector<double>& scratch, std::vector<float>& probs);

}  // namespace iris::infer
