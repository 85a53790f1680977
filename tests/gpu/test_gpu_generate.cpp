// The GPU decoder (src/infer/cuda/cuda_decoder.cpp) against the CPU decoder, its reference, on a random GQA model
// (C 256, NH 4, NKV 2, HS 64, F 512, L 2, V 300) whose weights are rounded to bf16 on both sides, so only the
// GPU's bf16 activations differ: three prompts of 1, 9 and 40 tokens prefilled into their slots, then 12 decode
// steps of the three together. Each logits vector: relative L2 error ≤ 3e-2 (bf16 keeps 8 bits; two layers of
// bf16 rounding stay near 1e-2), and the cache lengths agree.
#include <gtest/gtest.h>

#include <cmath>

#include "src/core/dtype.h"
#include "src/core/rng.h"
#include "src/infer/cpu_decoder.h"
#include "src/infer/cuda_decoder.h"
#include "tests/gpu/gpu_skip.h"

namespace iris::infer {
namespace {

constexpr double kRelL2 = 3e-2;

double rel_l2(const float* got, const float* ref, int n) {
  double num = 0.0, den = 0.0;
  for (int i = 0; i < n; ++i) num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]), den += double(ref[i]) * ref[i];
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST(GpuGenerate, CudaDecoderLogitsMatchTheCpuDecoder) {
  IRIS_REQUIRE_GPU();
  const nlohmann::json j = {{"hidden_size", 256}, {"intermediate_size", 512}, {"num_hidden_layers", 2},
                            {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 300},
                            {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"max_position_embeddings", 128},
                            {"initializer_range", 0.05}, {"model_type", "llama"}};
  const LlamaConfig c = LlamaConfig::from_json(j, "gpu-generate-test");
  const ParamTable table = ParamTable::build(c, Topology{}, StageLayers{0, c.num_hidden_layers});
  std::vector<float> params(table.total_numel());
  table.initialize(params.data(), 5);
  for (float& p : params) p = bf16_to_float(float_to_bf16(p));  // the GPU's weights, for both sides
  const int V = c.vocab_size, slots = 3, T_max = 64, lengths[] = {1, 9, 40};
  CpuDecoder cpu(c, Topology{}, nullptr, params.data(), slots, T_max);
  auto gpu = make_cuda_decoder(c, params.data(), slots, T_max);
  std::vector<float> a(slots * V), b(slots * V);
  std::vector<int32_t> last(slots);
  for (int s = 0; s < slots; ++s) {
    std::vector<int32_t> prompt(lengths[s]);
    for (int t = 0; t < lengths[s]; ++t) prompt[t] = static_cast<int32_t>(random_u64(9, s, t) % V);
    cpu.prefill(a.data(), s, prompt.data(), lengths[s]);
    gpu->prefill(b.data(), s, prompt.data(), lengths[s]);
    EXPECT_LE(rel_l2(b.data(), a.data(), V), kRelL2) << "prefill of slot " << s;
    last[s] = prompt.back();
  }
  const std::vector<int32_t> order = {2, 0, 1};  // rows name their slots out of order
  for (int step = 0; step < 12; ++step) {
    std::vector<int32_t> tokens(slots);
    for (int r = 0; r < slots; ++r) tokens[r] = static_cast<int32_t>(random_u64(10, step, r) % V);
    cpu.decode(a.data(), order.data(), tokens.data(), slots);
    gpu->decode(b.data(), order.data(), tokens.data(), slots);
    for (int r = 0; r < slots; ++r)
      EXPECT_LE(rel_l2(b.data() + r * V, a.data() + r * V, V), kRelL2) << "step " << step << " slot " << order[r];
  }
  for (int s = 0; s < slots; ++s) EXPECT_EQ(gpu->length(s), cpu.length(s));
}

}  // namespace
}  // namespace iris::infer
