// The planner: memory per GPU and predicted step time of a Llama training job under a (tp, pp, dp)
// layout, for the CUDA backend (bf16 weights, fp32 main gradients, ZeRO-1 fp32 master + Adam m, v).
// Every formula is derived, with its source, in docs/planning.md; byte counts are exact for the
// tensors Iris holds (per-rank parameter counts come from the parameter table itself).
// Conventions: bytes are bytes (GiB = 2^30 bytes), times are seconds, b = micro-batch, s = sequence.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/kernels/cpu/quantize.h"  // Quantize: the frozen base's weight format
#include "src/model/llama.h"  // Recompute: the modes the model stages implement
#include "src/model/llama_config.h"
#include "src/plan/hardware.h"

namespace iris::plan {

struct Job {
  int gpus = 1;
  int gpus_per_node = 8;
  int seq = 4096;           // T
  int global_batch = 1;     // samples per optimizer step
  int micro_batch = 1;      // b
  Recompute recompute = Recompute::None;
  bool flash_attention = true;  // no (s × s) attention matrix is stored
  bool bf16_grads = false;      // train.grad_dtype = bf16: bf16 gradient buffer + the fp32 DP-summed shard
  // LoRA (lora_r > 0): the base is frozen (no gradients, master or Adam state); only the adapters of the
  // target modules (PEFT's short names, or "all-linear") train. quantize stores the base's linear weights
  // as NF4 (bitsandbytes, statistics included) or per-row int8 instead of bf16.
  int lora_r = 0;
  std::vector<std::string> lora_targets = {"q_proj", "v_proj"};  // PEFT's default for Llama
  cpu::Quantize quantize = cpu::Quantize::None;
};

// Model FLOPs per token, the trainer's MFU formula (PaLM, Chowdhery et al. 2022, app. B):
// 6 × (parameters that take part in a matmul) + 12 × L × C × T. The input embedding is a lookup, not a
// matmul, so it is left out (unless tied, where the same matrix is the LM head).
int64_t matmul_parameters(const LlamaConfig& config);
double flops_per_token(const LlamaConfig& config, int seq);

// Activation bytes one transformer layer keeps for backward, for one micro-batch of b × s tokens on
// one TP rank, bf16, no sequence parallelism (Korthikanti et al. 2022, sec. 4, adapted to Llama).
double layer_activation_bytes(const LlamaConfig& config, int b, int s, int tp, Recompute recompute, bool flash);

struct MemoryBreakdown {
  int stage = 0;                // pipeline stage this breakdown is for
  int64_t local_parameters = 0; // elements on one GPU of that stage (tp_rank 0: holds the padded vocab rows)
  int activation_sets = 0;      // micro-batches alive at once under 1F1B: min(pp − stage, m)
  double weights = 0;           // bf16; with LoRA the frozen base (bf16, NF4 or int8)
  int64_t adapter_parameters = 0;  // LoRA: trainable elements on this GPU (A and B of every target)
  double adapters = 0;          // LoRA: their bf16 working copy (gradients and optimizer count only these)
  double gradients = 0;         // fp32 main gradients, or bf16 ones plus the fp32 shard (Job::bf16_grads)
  double optimizer = 0;         // ZeRO-1 shard: fp32 master + Adam m, v = 12 bytes × ceil(local / dp)
  double activations = 0;
  double logits = 0;            // last stage: bf16 logits + fp32 cross-entropy buffer
  double workspace = 0;         // CUDA context, cuBLASLt/NCCL buffers, one layer's activation gradients
  double total() const { return weights + adapters + gradients + optimizer + activations + logits + workspace; }
};

struct StepTime {
  int micro_batches = 0;  // m = global_batch / (dp × b), per DP replica
  double compute = 0;     // slowest stage, all its micro-batches
  double tp_comm = 0;     // TP all-reduces of that stage
  double pp_comm = 0;     // activation / gradient sends of that stage
  double bubble = 0;      // (p − 1)/m × (compute + tp + pp): 1F1B fill and drain
  double dp_comm = 0;     // ZeRO-1 reduce-scatter (fp32 grads) + all-gather (bf16 weights)
  double step = 0;
  double tokens_per_s = 0;
  double mfu = 0;         // model FLOPs / (gpus × peak)
};

struct LayoutPlan {
  int tp = 1, pp = 1, dp = 1;
  std::string refusal;            // non-empty: the layout is impossible, and why
  std::vector<MemoryBreakdown> stages;
  MemoryBreakdown worst;          // the stage with the largest total
  bool fits = false;
  std::string why_not;            // when it does not fit
  StepTime time;
};

// "" when (tp, pp) can run this job, else the reason (tp not dividing heads, pp > layers, ...).
std::string check_layout(const LlamaConfig& config, const Job& job, int tp, int pp);
MemoryBreakdown stage_memory(const LlamaConfig& config, const Job& job, int tp, int pp, int stage);
StepTime step_time(const LlamaConfig& config, const GpuSpec& gpu, const Job& job, int tp, int pp);
LayoutPlan plan_layout(const LlamaConfig& config, const GpuSpec& gpu, const Job& job, int tp, int pp);
// Every (tp, pp) with tp · pp dividing the GPU count: possible layouts ranked (fitting first, then by
// predicted tokens/s), refused ones last with their reason.
std::vector<LayoutPlan> plan_all(const LlamaConfig& config, const GpuSpec& gpu, const Job& job);

}  // namespace iris::plan
