// Iris CPU fp32 single rank vs Hugging Face transformers LlamaForCausalLM (the outside reference of
// the correctness chain). make_reference.py saved random models (GQA 4 query / 2 KV heads; untied,
// tied, Llama 3 rope_scaling; and a MistralForCausalLM without a sliding window) with save_pretrained, and
// the logits, masked mean loss and every parameter gradient for a fixed batch. Tolerances (fp32 on both sides):
//   logits: max |Δ| ≤ 1e-4;   loss: |Δ| / |loss| ≤ 1e-5;
//   each gradient tensor: ‖g − g_hf‖₂ / ‖g_hf‖₂ ≤ 1e-4.
// A missing reference is a failure, never a skip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/safetensors.h"
#include "src/model/hf_weights.h"
#include "src/model/llama.h"

namespace iris {
namespace {
namespace fs = std::filesystem;

std::vector<int32_t> read_i64_as_i32(const io::SafetensorsModel& ref, const std::string& name) {
  auto bytes = ref.raw(name);
  std::vector<int32_t> out(bytes.size() / 8);
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t v;
    std::memcpy(&v, bytes.data() + 8 * i, 8);
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

void check_case(const fs::path& dir) {
  SCOPED_TRACE(dir.filename().string());
  const LlamaConfig config = LlamaConfig::load(dir / "config.json");
  const io::SafetensorsModel ref = io::SafetensorsModel::open(dir / "reference.safetensors");
  const auto& shape = ref.info("input_ids").shape;
  ASSERT_EQ(shape.size(), 2u);
  const int B = static_cast<int>(shape[0]), T = static_cast<int>(shape[1]), N = B * T, V = config.vocab_size;

  const Topology topo = Topology::make(1, 0, 1, 1);
  const StageLayers layers = stage_layers(config.num_hidden_layers, 1, 0);
  const ParamTable table = ParamTable::build(config, topo, layers);
  std::vector<float> params(table.total_numel()), grads(table.total_numel(), 0.0f);
  load_hf_weights(table, dir / "model.safetensors", params.data());

  const std::vector<int32_t> tokens = read_i64_as_i32(ref, "input_ids"), targets = read_i64_as_i32(ref, "targets");
  std::vector<float> weight = ref.read_f32("loss_mask");
  float trained = 0;
  for (float w : weight) trained += w;
  ASSERT_GT(trained, 0);
  ASSERT_LT(trained, N) << "the reference mask should hide some tokens";
  for (float& w : weight) w /= trained;

  LlamaStage stage(config, topo, table, layers, B, T, nullptr);
  auto acts = stage.make_activations();
  MicroBatch mb{tokens.data(), targets.data(), weight.data(), nullptr, nullptr};
  const double loss = stage.forward(*acts, params.data(), mb, nullptr);

  const std::vector<float> ref_logits = ref.read_f32("logits");
  ASSERT_EQ(ref_logits.size(), static_cast<size_t>(N) * V);
  double max_logit_err = 0;
  for (int n = 0; n < N; ++n)
    for (int v = 0; v < V; ++v)
      max_logit_err = std::max(max_logit_err, static_cast<double>(std::fabs(acts->logits[static_cast<size_t>(n) * stage.vocab_local() + v] -
                                                                              ref_logits[static_cast<size_t>(n) * V + v])));
  EXPECT_LE(max_logit_err, 1e-4);
  const double ref_loss = ref.read_f32("loss")[0];
  EXPECT_LE(std::fabs(loss - ref_loss) / std::fabs(ref_loss), 1e-5) << "loss " << loss << " vs HF " << ref_loss;
  std::printf("[%s] logits max abs err %.3g, loss %.7f vs HF %.7f\n", dir.filename().c_str(), max_logit_err, loss, ref_loss);

  stage.backward(*acts, params.data(), grads.data(), mb, nullptr, nullptr);
  for (const auto& e : table.entries()) {
    const std::string name = "grad." + e.name;
    ASSERT_TRUE(ref.contains(name)) << name;
    const std::vector<float> g_ref = ref.read_f32(name);
    ASSERT_EQ(g_ref.size(), e.numel) << name;
    double err2 = 0, ref2 = 0;
    for (size_t i = 0; i < e.numel; ++i) {
      double d = grads[e.offset + i] - g_ref[i];
      err2 += d * d;
      ref2 += static_cast<double>(g_ref[i]) * g_ref[i];
    }
    const double rel = std::sqrt(err2 / ref2);
    EXPECT_LE(rel, 1e-4) << e.name;
    std::printf("[%s] %-48s grad rel err %.3g\n", dir.filename().c_str(), e.name.c_str(), rel);
  }
}

TEST(HuggingFaceParity, LogitsLossAndGradientsMatchTransformers) {
  const fs::path root = IRIS_HF_REF_DIR;
  ASSERT_TRUE(fs::exists(root / "manifest.json"))
      << root << " has no reference; the hf_make_reference test must run first (tools/setup-pyref.sh)";
  const std::vector<std::string> cases = {"untied", "tied", "llama3_rope", "mistral"};
  for (const auto& c : cases) {
    ASSERT_TRUE(fs::exists(root / c / "reference.safetensors")) << c;
    check_case(root / c);
  }
}

}  // namespace
}  // namespace iris
