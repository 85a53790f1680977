// Shared by the GPU model-stage tests (test_gpu_model.cpp, mpi_gpu_model_tp.cpp): the micro-batch shape,
// a tiny Llama config (untied head, vocabulary 256, 2 layers) and a seeded micro-batch, packed or not.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/core/rng.h"
#include "src/model/llama.h"
#include "src/model/llama_config.h"

namespace iris::test {

constexpr int B = 2, T = 32, N = B * T;

// initializer_range 0.08 rather than 0.02: attention scores and logits of order 1, so the softmaxes are
// far from uniform and a wrong kernel moves the loss (at 0.02 every loss sits near ln 256).
inline LlamaConfig tiny_gpu_config(int hidden, int intermediate, int heads, int kv_heads, const std::string& name) {
  const nlohmann::json j = {{"hidden_size", hidden},     {"intermediate_size", intermediate}, {"num_hidden_layers", 2},
                            {"num_attention_heads", heads}, {"num_key_value_heads", kv_heads}, {"vocab_size", 256},
                            {"rms_norm_eps", 1e-5},       {"rope_theta", 10000.0},   {"tie_word_embeddings", false},
                            {"initializer_range", 0.08},  {"model_type", "llama"}};
  return LlamaConfig::from_json(j, name);
}

// Host arrays of one micro-batch; packed: 2 and 3 documents per row with positions restarting at 0.
struct Batch {
  std::vector<int32_t> tokens, targets, positions, doc;
  std::vector<float> loss_weight;
  bool packed = false;
  MicroBatch view() const {
    return {tokens.data(), targets.data(), loss_weight.data(), packed ? positions.data() : nullptr,
            packed ? doc.data() : nullptr};
  }
};

inline Batch make_batch(int vocab, bool packed) {
  Batch b;
  b.packed = packed;
  b.tokens.resize(N), b.targets.resize(N), b.positions.resize(N), b.doc.resize(N), b.loss_weight.resize(N);
  const std::vector<int> doc_starts[B] = {{0, 12}, {0, 7, 22}};
  for (int r = 0; r < B; ++r) {
    int d = 0, start = 0;
    for (int t = 0; t < T; ++t) {
      if (packed && d + 1 < static_cast<int>(doc_starts[r].size()) && t == doc_starts[r][d + 1]) start = t, ++d;
      const int i = r * T + t;
      b.doc[i] = d;
      b.positions[i] = t - start;
    }
  }
  float trained = 0;
  for (int i = 0; i < N; ++i) {
    b.tokens[i] = static_cast<int32_t>(random_u64(21, 1, i) % vocab);
    b.targets[i] = static_cast<int32_t>(random_u64(21, 2, i) % vocab);
    b.loss_weight[i] = (i % 5 == 4) ? 0.0f : 1.0f;  // some tokens masked out of the loss
    trained += b.loss_weight[i];
  }
  for (float& w : b.loss_weight) w /= trained;
  return b;
}

}  // namespace iris::test
