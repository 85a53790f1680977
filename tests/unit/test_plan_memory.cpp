// The planner's parameter counts, memory terms and FLOPs against hand calculations written here.
#include <gtest/gtest.h>

#include <string>

#include "src/plan/plan.h"

namespace iris::plan {
namespace {

LlamaConfig model(const std::string& name) {
  return LlamaConfig::load(std::string(IRIS_SOURCE_DIR) + "/configs/models/" + name + ".json");
}

TEST(PlanParameters, ExactCountsOfBundledConfigs) {
  EXPECT_EQ(model("llama2-7b").num_parameters(), 6738415616LL);
  EXPECT_EQ(model("llama2-13b").num_parameters(), 13015864320LL);
  EXPECT_EQ(model("llama3-8b").num_parameters(), 8030261248LL);
  EXPECT_EQ(model("llama3.2-1b").num_parameters(), 1235814400LL);
  EXPECT_EQ(model("llama3.2-3b").num_parameters(), 3212749824LL);
}

TEST(PlanParameters, StagesAddUpToTheModel) {
  // tp = 1: the per-stage tables the planner uses hold every parameter exactly once (untied), or the
  // embedding twice when it is tied and first and last stage differ (llama3.2-1b ties it).
  Job job;
  job.gpus = 4;
  job.global_batch = 8;
  for (const char* name : {"llama2-7b", "llama2-13b", "llama3-8b"}) {
    const LlamaConfig c = model(name);
    int64_t sum = 0;
    for (int s = 0; s < 4; ++s) sum += stage_memory(c, job, 1, 4, s).local_parameters;
    EXPECT_EQ(sum, c.num_parameters()) << name;
  }
  const LlamaConfig tied = model("llama3.2-1b");
  int64_t sum = 0;
  for (int s = 0; s < 4; ++s) sum += stage_memory(tied, job, 1, 4, s).local_parameters;
  EXPECT_EQ(sum, tied.num_parameters() + 128256LL * 2048);
}

TEST(PlanMemory, ZeroOneLlama2_7bAtDp8) {
  // 8 GPUs, tp = pp = 1: every GPU holds all 6,738,415,616 parameters; ZeRO-1 shards 12 bytes of
  // fp32 master + Adam m, v per parameter over dp = 8: 12 × 842,301,952 = 10,107,623,424 bytes.
  Job job;
  job.gpus = 8;
  job.global_batch = 8;
  const MemoryBreakdown m = stage_memory(model("llama2-7b"), job, 1, 1, 0);
  EXPECT_EQ(m.local_parameters, 6738415616LL);
  EXPECT_DOUBLE_EQ(m.optimizer, 10107623424.0);
  EXPECT_DOUBLE_EQ(m.weights, 13476831232.0);    // bf16
  EXPECT_DOUBLE_EQ(m.gradients, 26953662464.0);  // fp32
}

TEST(PlanMemory, Bf16GradientsAreTheBf16BufferPlusTheFp32Shard) {
  // train.grad_dtype = bf16: 2 B/param of bf16 gradients, plus at dp > 1 the fp32 shard the reduce-scatter
  // sums into: 2 × 6,738,415,616 + 4 × 842,301,952 = 16,846,039,040 bytes at dp = 8; 2 B/param at dp = 1.
  Job job;
  job.gpus = 8;
  job.global_batch = 8;
  job.bf16_grads = true;
  const MemoryBreakdown m = stage_memory(model("llama2-7b"), job, 1, 1, 0);
  EXPECT_DOUBLE_EQ(m.gradients, 16846039040.0);
  EXPECT_DOUBLE_EQ(m.optimizer, 10107623424.0);  // unchanged: fp32 master + Adam m, v
  job.gpus = 1;
  job.global_batch = 1;
  EXPECT_DOUBLE_EQ(stage_memory(model("llama2-7b"), job, 1, 1, 0).gradients, 13476831232.0);
}

TEST(PlanMemory, ZeroOneLlama2_13bTp2Pp2On16Gpus) {
  // Stage 0, TP rank 0: 20 layers × (attention 4·5120²/2 + MLP 3·5120·13824/2 + norms 2·5120)
  // = 20 × 158,607,360 = 3,172,147,200, plus embedding rows 32000/2 × 5120 = 81,920,000:
  // 3,254,067,200 parameters; dp = 16/4 = 4 → optimizer 12 × 813,516,800 = 9,762,201,600 bytes.
  Job job;
  job.gpus = 16;
  job.global_batch = 16;
  const MemoryBreakdown m = stage_memory(model("llama2-13b"), job, 2, 2, 0);
  EXPECT_EQ(m.local_parameters, 3254067200LL);
  EXPECT_DOUBLE_EQ(m.optimizer, 9762201600.0);
}

TEST(PlanMemory, ActivationsPerLayerByHand) {
  // llama2-7b, b = 1, s = 4096, tp = 1, bf16. Per token: replicated 4 tensors × 2·4096 = 32,768;
  // q, attention output, k, v (MHA: all 4096 wide) 4 × 2·4096 = 32,768; gate, up, h 3 × 2·11008 =
  // 66,048; FlashAttention LSE 4 bytes × 32 heads = 128. Total 131,712 bytes/token.
  const LlamaConfig c = model("llama2-7b");
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, 1, 4096, 1, Recompute::None, true), 131712.0 * 4096);
  // Selective drops the attention output (2·4096), the LSE and silu(gate)·up (2·11008): 131,712 − 8,192
  // − 128 − 22,016 = 101,376.
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, 1, 4096, 1, Recompute::Selective, true), 101376.0 * 4096);
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, 1, 4096, 1, Recompute::Selective, false), 101376.0 * 4096);
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, 1, 4096, 1, Recompute::Full, true), 2.0 * 4096 * 4096);
  // Without FlashAttention the bf16 softmax output (32 heads × 4096 × 4096 per sample) is kept.
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, 1, 4096, 1, Recompute::None, false), (131584.0 + 2 * 32 * 4096) * 4096);
  // tp = 4: the 4 replicated tensors stay whole (no sequence parallelism), the rest divides by 4.
  EXPECT_DOUBLE_EQ(layer_activation_bytes(c, 2, 4096, 4, Recompute::None, true),
                   2.0 * 4096 * (32768 + (32768 + 66048 + 128) / 4.0));
}

TEST(PlanMemory, MatchesKorthikantiForAGptShapedLayer) {
  // Korthikanti et al. 2022 eq. 1: s·b·h·(34 + 5·a·s/h) bytes per GPT layer (tp = 1, no recompute).
  // Our count for a GPT-shaped layer (F = 4h, MHA) differs by exactly: + 2·F (SwiGLU's third F-wide
  // tensor) − 2·h (GPT's two 1-byte dropout masks of size h) − 3·a·s (attention dropout mask and output).
  LlamaConfig gpt = model("llama2-7b");
  gpt.intermediate_size = 4 * gpt.hidden_size;
  const double s = 2048, b = 1, h = gpt.hidden_size, a = gpt.num_attention_heads;
  const double korthikanti = s * b * h * (34 + 5 * a * s / h);
  const double ours = layer_activation_bytes(gpt, 1, 2048, 1, Recompute::None, false);
  EXPECT_DOUBLE_EQ(ours - korthikanti, s * b * (2 * 4 * h - 2 * h - 3 * a * s));
}

TEST(PlanMemory, OneFOneBActivationSets) {
  // Stage s keeps min(pp − s, m) micro-batches: llama2-13b, pp = 4, global batch 8 on 4 GPUs → m = 8.
  Job job;
  job.gpus = 4;
  job.global_batch = 8;
  const LlamaConfig c = model("llama2-13b");
  EXPECT_EQ(stage_memory(c, job, 1, 4, 0).activation_sets, 4);
  EXPECT_EQ(stage_memory(c, job, 1, 4, 3).activation_sets, 1);
  job.global_batch = 2;  // m = 2
  EXPECT_EQ(stage_memory(c, job, 1, 4, 0).activation_sets, 2);
  // Stage 0 holds 10 layers × 4 sets = 40 layers' activations, the last stage 10 × 1 plus the logits:
  // bf16 + fp32 over 32000 vocab rows and the final norm's input and output.
  job.global_batch = 8;
  const double per_layer = layer_activation_bytes(c, 1, 4096, 1, Recompute::None, true);
  EXPECT_DOUBLE_EQ(stage_memory(c, job, 1, 4, 0).activations, 40 * per_layer);
  EXPECT_DOUBLE_EQ(stage_memory(c, job, 1, 4, 3).logits, 4096.0 * (2 * 2 * 5120 + 6 * 32000));
  EXPECT_DOUBLE_EQ(stage_memory(c, job, 1, 4, 0).logits, 0.0);
}

TEST(PlanFlops, TrainerMfuFormula) {
  // llama2-7b: 6 × (6,738,415,616 − 32000·4096 embedding) + 12 × 32 × 4096 × 4096.
  EXPECT_DOUBLE_EQ(flops_per_token(model("llama2-7b"), 4096), 6.0 * 6607343616 + 12.0 * 32 * 4096 * 4096);
  // Tied (llama3.2-1b): the embedding is also the LM head, a matmul, so every parameter counts.
  EXPECT_EQ(matmul_parameters(model("llama3.2-1b")), 1235814400LL);
}

}  // namespace
}  // namespace iris::plan
