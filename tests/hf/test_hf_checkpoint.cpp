// Iris's forward on the checkpoint made by `iris-convert hf-to-iris --tp 2 --pp 2` (loaded here at one
// rank, so also a reshard on load) against the logits transformers computes on the `iris-to-hf` export
// of the same checkpoint (tests/hf/checkpoint_roundtrip.py). Tolerance: 1e-4 abs, as in hf_parity.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "src/model/llama.h"
#include "src/train/checkpoint.h"

namespace iris {
namespace {
namespace fs = std::filesystem;

TEST(HuggingFaceCheckpoint, IrisLogitsOnTheCheckpointMatchTransformersOnTheExport) {
  const fs::path work = IRIS_HF_CKPT_DIR;
  ASSERT_TRUE(fs::exists(work / "logits.safetensors")) << "hf_checkpoint_roundtrip must run first";
  const fs::path dir = io::resolve_checkpoint((work / "iris").string(), "");
  const io::CheckpointDir ckpt = io::CheckpointDir::open(dir);
  EXPECT_EQ(ckpt.manifest().tp, 2);
  EXPECT_EQ(ckpt.manifest().pp, 2);
  const LlamaConfig config = LlamaConfig::from_json(ckpt.manifest().model_config, dir.string());

  const Topology topo = Topology::make(1, 0, 1, 1);
  const StageLayers layers = stage_layers(config.num_hidden_layers, 1, 0);
  const ParamTable table = ParamTable::build(config, topo, layers);
  std::vector<float> params(table.total_numel(), 0.0f);
  HostStateStore store(params.data(), params.size(), {0, params.size()}, nullptr, size_t{1} << 20);
  StateStream state(store, nullptr);
  const TrainProgress p = load_checkpoint(CheckpointState{config, topo, table, state, false, nullptr, ""}, dir);
  EXPECT_EQ(p.step, 0);

  const io::SafetensorsModel ref = io::SafetensorsModel::open(work / "logits.safetensors");
  const auto& shape = ref.info("input_ids").shape;
  const int B = static_cast<int>(shape[0]), T = static_cast<int>(shape[1]), N = B * T, V = config.vocab_size;
  std::vector<int32_t> tokens(N), targets(N, 0);
  const auto raw = ref.raw("input_ids");
  for (int i = 0; i < N; ++i) {
    int64_t v;
    std::memcpy(&v, raw.data() + 8 * i, 8);
    tokens[i] = static_cast<int32_t>(v);
  }
  std::vector<float> weight(N, 1.0f / N);
  LlamaStage stage(config, topo, table, layers, B, T, nullptr);
  auto acts = stage.make_activations();
  MicroBatch mb{tokens.data(), targets.data(), weight.data(), nullptr, nullptr};
  stage.forward(*acts, params.data(), mb, nullptr);

  const std::vector<float> ref_logits = ref.read_f32("logits");
  ASSERT_EQ(ref_logits.size(), static_cast<size_t>(N) * V);
  double max_err = 0;
  for (int n = 0; n < N; ++n)
    for (int v = 0; v < V; ++v)
      max_err = std::max(max_err, static_cast<double>(std::fabs(acts->logits[static_cast<size_t>(n) * stage.vocab_local() + v] -
                                                                 ref_logits[static_cast<size_t>(n) * V + v])));
  std::printf("logits max abs err %.3g over %d x %d\n", max_err, N, V);
  EXPECT_LE(max_err, 1e-4);
}

}  // namespace
}  // namespace iris
