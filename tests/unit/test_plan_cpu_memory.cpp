// The CPU memory model's activation count equals what LlamaStage::make_activations allocates (the
// activations are one contiguous block: first tensor resid[0], last rope_sin or, on the last stage, logits).
#include <gtest/gtest.h>

#include <string>

#include "src/model/llama.h"
#include "src/plan/cpu_memory.h"

namespace iris::plan {
namespace {

TEST(PlanCpuMemory, ActivationFloatsMatchTheStage) {
  const LlamaConfig c = LlamaConfig::load(std::string(IRIS_SOURCE_DIR) + "/configs/models/tiny.json");
  const int B = 2, T = 16;
  const size_t N = static_cast<size_t>(B) * T;
  for (Recompute mode : {Recompute::None, Recompute::Selective, Recompute::Full}) {
    for (int pp : {1, 2, 4}) {
      for (int stage = 0; stage < pp; ++stage) {
        const Topology topo = Topology::make(pp, stage, 1, pp);
        const StageLayers layers = stage_layers(c.num_hidden_layers, pp, stage);
        const ParamTable table = ParamTable::build(c, topo, layers);
        LlamaStage model(c, topo, table, layers, B, T, nullptr, mode);
        auto acts = model.make_activations();
        const float* end =
            topo.is_last_stage() ? acts->logits + N * model.vocab_local() : acts->rope_sin + N * c.head_dim / 2;
        EXPECT_EQ(static_cast<size_t>(end - acts->resid[0]), stage_activation_floats(c, 1, pp, stage, B, T, mode))
            << "recompute " << to_string(mode) << " pp " << pp << " stage " << stage;
        EXPECT_EQ(acts->arena.capacity(), stage_activation_floats(c, 1, pp, stage, B, T, mode));
      }
    }
  }
}

// The stage's own buffers: the backward scratch the model counts, plus the recompute set.
TEST(PlanCpuMemory, RecomputeSetMatchesTheStage) {
  const LlamaConfig c = LlamaConfig::load(std::string(IRIS_SOURCE_DIR) + "/configs/models/tiny.json");
  const int B = 2, T = 16;
  const Topology topo = Topology::make(1, 0, 1, 1);
  const StageLayers layers = stage_layers(c.num_hidden_layers, 1, 0);
  const ParamTable table = ParamTable::build(c, topo, layers);
  const size_t none = LlamaStage(c, topo, table, layers, B, T, nullptr).scratch_floats();
  for (Recompute mode : {Recompute::Selective, Recompute::Full}) {
    const LlamaStage model(c, topo, table, layers, B, T, nullptr, mode);
    EXPECT_EQ(model.scratch_floats() - none, recompute_set_floats(c, 1, B, T, mode)) << to_string(mode);
  }
}

}  // namespace
}  // namespace iris::plan
