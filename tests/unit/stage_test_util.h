// Shared by the unit tests that run LlamaStage by hand (recompute, gradient-ready reports): a tiny GQA
// config, a packed micro-batch and one pipeline stage with its weights and gradients.
#pragma once
#include <memory>
#include <vector>

#include "src/core/rng.h"
#include "src/model/llama.h"

namespace iris::test {

inline LlamaConfig tiny_config(bool tied = false) {
  const nlohmann::json j = {{"hidden_size", 16},         {"intermediate_size", 24}, {"num_hidden_layers", 4},
                            {"num_attention_heads", 4},   {"num_key_value_heads", 2}, {"vocab_size", 29},
                            {"rms_norm_eps", 1e-5},       {"rope_theta", 10000.0},   {"tie_word_embeddings", tied},
                            {"initializer_range", 0.3},   {"model_type", "llama"}};
  return LlamaConfig::from_json(j, "tiny");
}

constexpr int B = 2, T = 8, N = B * T;

// Host arrays of one micro-batch, packed: row 0 holds documents [0, 3) [3, 8), row 1 [0, 5) [5, 8).
struct Batch {
  std::vector<int32_t> tokens, targets, positions, doc;
  std::vector<float> loss_weight;
  explicit Batch(uint64_t seed) : tokens(N), targets(N), positions(N), doc(N), loss_weight(N) {
    const int split[B] = {3, 5};
    for (int i = 0; i < N; ++i) {
      const int r = i / T, t = i % T;
      doc[i] = t < split[r] ? 0 : 1;
      positions[i] = t < split[r] ? t : t - split[r];
      tokens[i] = static_cast<int32_t>(random_u64(seed, 1, i) % 29);
      targets[i] = static_cast<int32_t>(random_u64(seed, 2, i) % 29);
      loss_weight[i] = (i % 4 == 3) ? 0.0f : 1.0f / 12;
    }
  }
  MicroBatch view() const { return {tokens.data(), targets.data(), loss_weight.data(), positions.data(), doc.data()}; }
};

// One pipeline stage: its table, weights (norm weights away from 1) and gradients.
struct Stage {
  Topology topo;
  StageLayers layers;
  ParamTable table;
  LlamaStage model;
  std::vector<float> params, grads;
  Stage(const LlamaConfig& c, int pp, int stage, Recompute mode = Recompute::None)
      : topo(Topology::make(pp, stage, 1, pp)), layers(stage_layers(c.num_hidden_layers, pp, stage)),
        table(ParamTable::build(c, topo, layers)), model(c, topo, table, layers, B, T, nullptr, mode),
        params(table.total_numel()), grads(table.total_numel(), 0.0f) {
    table.initialize(params.data(), 7);
    for (const auto& e : table.entries())
      if (e.init_std == 0.0)
        for (size_t i = 0; i < e.numel; ++i)
          params[e.offset + i] = 1.0f + 0.2f * static_cast<float>(random_normal(3, e.numel, i));
  }
};

}  // namespace iris::test
