// The planner's LoRA / QLoRA memory (src/plan/lora_memory.cpp): exact adapter and frozen-base byte counts
// for llama2-7b, the adapters split by tensor parallelism as the layers are, and the budget: r 16 on
// an NF4 base, seq 2048, micro-batch 1, full recomputation, one GPU, under 12 GB.
#include <gtest/gtest.h>

#include <string>

#include "src/core/error.h"
#include "src/plan/plan.h"

namespace iris::plan {
namespace {

LlamaConfig llama2_7b() { return LlamaConfig::load(std::string(IRIS_SOURCE_DIR) + "/configs/models/llama2-7b.json"); }

Job qlora_job(cpu::Quantize q) {
  Job job;
  job.seq = 2048;
  job.recompute = Recompute::Full;
  job.lora_r = 16;
  job.quantize = q;
  return job;
}

TEST(PlanLora, Llama2_7bQloraR16FitsIn12GB) {
  const LlamaConfig c = llama2_7b();
  const MemoryBreakdown m = stage_memory(c, qlora_job(cpu::Quantize::Nf4), 1, 1, 0);
  const int64_t A = 32LL * 2 * 16 * (4096 + 4096);  // q_proj and v_proj, 32 layers
  EXPECT_EQ(m.adapter_parameters, A);
  EXPECT_DOUBLE_EQ(m.gradients, 4.0 * A);
  EXPECT_DOUBLE_EQ(m.optimizer, 12.0 * A);
  EXPECT_DOUBLE_EQ(m.adapters, 2.0 * A);
  // NF4 linears (q, k, v, o: C·C; gate, up, down: F·C) + bf16 embeddings, LM head and norms
  const double linear = 32.0 * (4 * cpu::nf4_bytes(4096ull * 4096) + 3 * cpu::nf4_bytes(11008ull * 4096));
  const double rest = 2.0 * (2.0 * 32000 * 4096 + 65.0 * 4096);
  EXPECT_DOUBLE_EQ(m.weights, linear + rest);
  EXPECT_LT(m.total(), 12e9) << m.total() / 1e9 << " GB";
  // the same adapters on a bf16 base: the base costs 2 B/param, nothing else changes but the dequant buffer
  const MemoryBreakdown bf16 = stage_memory(c, qlora_job(cpu::Quantize::None), 1, 1, 0);
  EXPECT_DOUBLE_EQ(bf16.weights, 2.0 * static_cast<double>(c.num_parameters()));
  EXPECT_DOUBLE_EQ(m.workspace - bf16.workspace, 2.0 * 11008 * 4096);
}

TEST(PlanLora, TensorParallelSplitsBByOutputForColumnLayersAndAByInputForRowLayers) {
  Job job = qlora_job(cpu::Quantize::Nf4);
  job.gpus = 2;
  job.lora_targets = {"q_proj", "o_proj"};
  const MemoryBreakdown m = stage_memory(llama2_7b(), job, 2, 1, 0);
  // q_proj (column): A (16, 4096) whole, B (2048, 16); o_proj (row): A (16, 2048), B (4096, 16)
  EXPECT_EQ(m.adapter_parameters, 32LL * 16 * ((4096 + 2048) + (2048 + 4096)));
}

TEST(PlanLora, AllLinearAndUnknownTargets) {
  Job job = qlora_job(cpu::Quantize::Nf4);
  job.lora_targets = {"all-linear"};
  EXPECT_EQ(stage_memory(llama2_7b(), job, 1, 1, 0).adapter_parameters,
            32LL * 16 * (4 * (4096 + 4096) + 3 * (4096 + 11008)));
  job.lora_targets = {"qproj"};
  EXPECT_THROW(stage_memory(llama2_7b(), job, 1, 1, 0), UserError);
}

}  // namespace
}  // namespace iris::plan
