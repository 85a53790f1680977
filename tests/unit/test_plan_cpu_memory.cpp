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
  for (int pp : {1, 2, 4}) {
    for (int stage = 0; stage < pp; ++stage) {
      const Topology topo = Topology::make(pp, stage, 1, pp);
      const StageLayers layers = stage_layers(c.num_hidden_layers, pp, stage);
      const ParamTable table = ParamTable::build(c, topo, layers);
      LlamaStage model(c, topo, table, layers, B, T, nullptr);
      auto acts = model.make_activations();
      const float* end = topo.is_last_stage() ? acts->logits + N * model.vocab_local() : acts->rope_sin + N * c.head_dim / 2;
      EXPECT_EQ(static_cast<size_t>(end - acts->resid[0]), stage_activation_floats(c, 1, pp, stage, B, T))
          << "pp " << pp << " stage " << stage;
    }
  }
}

}  // namespace
}  // namespace iris::plan
