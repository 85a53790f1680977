// Activation recomputation (Recompute, src/model/llama.h) changes what a micro-batch keeps, not the math:
// losses and every parameter and stage-input gradient are bit-identical between none, selective and full
// (fp32, the same CPU kernels on the same inputs), on one stage and on a 2- and 4-stage pipeline run in
// one process, with packed documents and two micro-batches in flight (F0 F1 B0 B1, as 1F1B's warm-up
// does) so the stage's shared recompute set is overwritten between a forward and its backward.
// tp = 2 is covered under mpirun (tests/mpi/recompute_modes_match.sh). Also: the activation arena shrinks
// none > selective > full.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "tests/unit/stage_test_util.h"

namespace iris {
namespace {

using test::B;
using test::Batch;
using test::N;
using test::Stage;
using test::T;
using test::tiny_config;

struct Result {
  std::vector<double> losses;                   // per micro-batch (last stage)
  std::vector<std::vector<float>> grads;        // per stage
  std::vector<std::vector<float>> stage_dinput;  // per stage > 0, of the last micro-batch's backward
};

// Forward of both micro-batches through every stage, then backward of both (F0 F1 B0 B1 on each stage).
Result run(Recompute mode, int pp) {
  const LlamaConfig c = tiny_config();
  std::vector<std::unique_ptr<Stage>> stages;
  for (int s = 0; s < pp; ++s) stages.push_back(std::make_unique<Stage>(c, pp, s, mode));
  const Batch batches[2] = {Batch(11), Batch(12)};
  std::vector<std::unique_ptr<StageActivations>> acts[2];
  Result r;
  for (int m = 0; m < 2; ++m) {
    const float* input = nullptr;
    for (int s = 0; s < pp; ++s) {
      acts[m].push_back(stages[s]->model.make_activations());
      const double loss = stages[s]->model.forward(*acts[m][s], stages[s]->params.data(), batches[m].view(), input);
      input = stages[s]->model.output(*acts[m][s]);
      if (s == pp - 1) r.losses.push_back(loss);
    }
  }
  r.stage_dinput.assign(pp, std::vector<float>(static_cast<size_t>(N) * c.hidden_size));
  std::vector<float> dout(static_cast<size_t>(N) * c.hidden_size);
  for (int m = 0; m < 2; ++m) {
    for (int s = pp - 1; s >= 0; --s) {
      Stage& st = *stages[s];
      st.model.backward(*acts[m][s], st.params.data(), st.grads.data(), batches[m].view(), dout.data(),
                        r.stage_dinput[s].data());
      dout = r.stage_dinput[s];
    }
  }
  for (auto& st : stages) r.grads.push_back(st->grads);
  return r;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class RecomputeModes : public ::testing::TestWithParam<int> {};

TEST_P(RecomputeModes, LossesAndGradientsAreBitIdenticalToNone) {
  const int pp = GetParam();
  const Result none = run(Recompute::None, pp);
  double grad_abs = 0;
  for (const auto& g : none.grads)
    for (float x : g) grad_abs += std::fabs(x);
  ASSERT_GT(grad_abs, 0.0) << "vacuous: all gradients are zero";
  ASSERT_NE(none.losses[0], none.losses[1]) << "the two micro-batches should differ";
  for (Recompute mode : {Recompute::Selective, Recompute::Full}) {
    const Result r = run(mode, pp);
    for (int m = 0; m < 2; ++m)
      EXPECT_EQ(r.losses[m], none.losses[m]) << to_string(mode) << " pp " << pp << " micro-batch " << m;
    for (int s = 0; s < pp; ++s) {
      EXPECT_TRUE(bit_identical(r.grads[s], none.grads[s])) << to_string(mode) << " pp " << pp << " stage " << s;
      if (s > 0)
        EXPECT_TRUE(bit_identical(r.stage_dinput[s], none.stage_dinput[s]))
            << to_string(mode) << " pp " << pp << " stage " << s << " input gradient";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Pipelines, RecomputeModes, ::testing::Values(1, 2, 4),
                         [](const auto& info) { return "pp" + std::to_string(info.param); });

// The activation arena of one micro-batch (what 1F1B multiplies by the sets in flight) per mode, and the
// stage's recompute set, for a shape where each mode must save: selective drops att, lse and h per layer,
// full everything but the layer input.
TEST(RecomputeMemory, ArenaShrinksNoneSelectiveFull) {
  const nlohmann::json j = {{"hidden_size", 64},       {"intermediate_size", 172}, {"num_hidden_layers", 4},
                            {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 64},
                            {"model_type", "llama"}};
  const LlamaConfig c = LlamaConfig::from_json(j, "arena");
  const Topology topo = Topology::make(2, 0, 1, 2);  // a first stage: no logits, so layers dominate
  const StageLayers layers = stage_layers(c.num_hidden_layers, 2, 0);
  const ParamTable table = ParamTable::build(c, topo, layers);
  size_t arena[3], scratch[3];
  int i = 0;
  for (Recompute mode : {Recompute::None, Recompute::Selective, Recompute::Full}) {
    LlamaStage stage(c, topo, table, layers, 4, 128, nullptr, mode);
    arena[i] = stage.make_activations()->arena.capacity();
    scratch[i] = stage.scratch_floats();
    std::printf("  recompute %-9s activation arena %9zu floats (%.2f MiB) per micro-batch; stage scratch %8zu floats\n",
                to_string(mode), arena[i], arena[i] * 4.0 / (1 << 20), scratch[i]);
    ++i;
  }
  EXPECT_LT(arena[1], arena[0]);
  EXPECT_LT(arena[2], arena[1]);
  // The stage pays one layer's worth of dropped buffers once, less than one micro-batch saves.
  EXPECT_LT(scratch[1] - scratch[0], arena[0] - arena[1]);
  EXPECT_LT(scratch[2] - scratch[0], arena[0] - arena[2]);
}

}  // namespace
}  // namespace iris
