// Memory per GPU for the CUDA backend. Derivations and sources: docs/planning.md, "Memory".
#include <algorithm>
#include <fmt/format.h>

#include "parallel/topology.h"
#include "src/core/check.h"
#include "src/core/error.h"
#include "src/model/param_table.h"
#include "src/plan/lora_memory.h"
#include "src/plan/plan.h"

namespace iris::plan {
namespace {
constexpr double kBf16 = 2, kFp32 = 4;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// CUDA context, cuBLASLt workspaces and NCCL communicator buffers: a planning allowance (docs/planning.md).
constexpr double kFixedWorkspace = 1.0 * kGiB;
}  // namespace

int64_t matmul_parameters(const LlamaConfig& c) {
  const int64_t embedding = static_cast<int64_t>(c.vocab_size) * c.hidden_size;
  return c.num_parameters() - (c.tie_word_embeddings ? 0 : embedding);
}

double flops_per_token(const LlamaConfig& c, int seq) {
  return 6.0 * static_cast<double>(matmul_parameters(c)) +
         12.0 * c.num_hidden_layers * static_cast<double>(c.hidden_size) * seq;
}

// Korthikanti et al. 2022, sec. 4.1, counted tensor by tensor for a Llama layer (no dropout, SwiGLU,
// GQA), n = b·s tokens, bf16, TP without sequence parallelism (replicated tensors are not divided):
//   replicated:  input_layernorm input and output, post_attention_layernorm input and output  4·2C
//   TP-sharded:  q, attention output (o_proj input) 2·2Cq; k, v 2·2Ckv; gate, up, silu(gate)·up 3·2F
//   flash:       log-sum-exp per (head, token), fp32                                    4·NH
//   no flash:    the softmax output, a bf16 (NH, s, s) matrix per sample                2·NH·s
// GPT's 34·s·b·h (Korthikanti eq. 1 without the 5as/h term) is the same count with F = 4C, Ckv = C,
// GeLU's two F-wide tensors instead of SwiGLU's three and two dropout masks.
// Recomputation as the model stages do it (Recompute, src/model/llama.h): selective drops the attention
// core's output and statistics and the SwiGLU product (2Cq + 2F + the LSE or softmax term), full keeps
// only the layer input.
double layer_activation_bytes(const LlamaConfig& c, int b, int s, int tp, Recompute recompute, bool flash) {
  const double n = static_cast<double>(b) * s;
  const double C = c.hidden_size, Cq = static_cast<double>(c.num_attention_heads) * c.head_dim,
               Ckv = static_cast<double>(c.num_key_value_heads) * c.head_dim, F = c.intermediate_size;
  const double NH = c.num_attention_heads;
  if (recompute == Recompute::Full) return n * kBf16 * C;  // only the layer input (Korthikanti sec. 4.3)
  if (recompute == Recompute::Selective) return n * (kBf16 * 4 * C + kBf16 * (Cq + 2 * Ckv + 2 * F) / tp);
  const double attention_core = flash ? kFp32 * NH / tp : kBf16 * NH * s / tp;
  return n * (kBf16 * 4 * C + kBf16 * (2 * Cq + 2 * Ckv + 3 * F) / tp + attention_core);
}

std::string check_layout(const LlamaConfig& c, const Job& job, int tp, int pp) {
  if (tp < 1 || pp < 1) return fmt::format("tp = {} and pp = {} must be at least 1", tp, pp);
  if (job.gpus % (tp * pp) != 0)
    return fmt::format("tp × pp = {} × {} = {} does not divide the {} GPUs", tp, pp, tp * pp, job.gpus);
  try {
    validate_layout(c, tp, pp);
    stage_layers(c.num_hidden_layers, pp, 0);
  } catch (const UserError& e) {
    return e.what();
  }
  const int dp = job.gpus / (tp * pp);
  if (job.global_batch % (dp * job.micro_batch) != 0)
    return fmt::format("global batch {} is not a multiple of dp × micro-batch = {} × {} = {}", job.global_batch, dp,
                       job.micro_batch, dp * job.micro_batch);
  return "";
}

MemoryBreakdown stage_memory(const LlamaConfig& c, const Job& job, int tp, int pp, int stage) {
  const int dp = job.gpus / (tp * pp);
  const int m = job.global_batch / (dp * job.micro_batch);
  // The first GPU of the stage (tp_rank 0, dp_rank 0): its parameter table is the exact local tensor set.
  const Topology topo = Topology::make(tp * pp, stage * tp, tp, pp);
  const StageLayers layers = stage_layers(c.num_hidden_layers, pp, stage);
  const ParamTable table = ParamTable::build(c, topo, layers);

  MemoryBreakdown mem;
  mem.stage = stage;
  mem.local_parameters = static_cast<int64_t>(table.total_numel());
  mem.activation_sets = std::min(pp - stage, m);
  const double P = static_cast<double>(mem.local_parameters);
  mem.weights = kBf16 * P;
  const double shard = static_cast<double>((mem.local_parameters + dp - 1) / dp);
  // bf16 gradients (src/train/cuda/zero1_cuda_optimizer.h): the flat buffer in bf16, and at dp > 1 the fp32
  // shard the reduce-scatter sums into; at dp = 1 the optimizer reads the bf16 buffer itself.
  mem.gradients = job.bf16_grads ? kBf16 * P + (dp > 1 ? kFp32 * shard : 0.0) : kFp32 * P;
  mem.optimizer = 12.0 * shard;

  const int b = job.micro_batch, s = job.seq;
  const double n = static_cast<double>(b) * s;
  const double per_layer = layer_activation_bytes(c, b, s, tp, job.recompute, job.flash_attention);
  mem.activations = mem.activation_sets * layers.count() * per_layer;
  // Backward needs one layer's worth of activation gradients at a time, and under recomputation the stage's
  // recompute set: one layer's worth of what the mode drops (all but the input under full).
  const double one_layer = layer_activation_bytes(c, b, s, tp, Recompute::None, job.flash_attention);
  mem.workspace = kFixedWorkspace + one_layer + (one_layer - per_layer);
  if (job.lora_r > 0) apply_lora_memory(mem, job, table, dp, layers.count());
  if (stage == pp - 1) {
    // Final norm input and output (bf16), logits (bf16) and the fp32 copy the vocab-parallel
    // cross-entropy keeps for its backward (Megatron's vocab_parallel_cross_entropy works in fp32).
    const double V_local = static_cast<double>(table.padded_vocab()) / tp;
    mem.logits = n * (kBf16 * 2 * c.hidden_size + (kBf16 + kFp32) * V_local);
  }
  return mem;
}

LayoutPlan plan_layout(const LlamaConfig& c, const GpuSpec& gpu, const Job& job, int tp, int pp) {
  LayoutPlan plan;
  plan.tp = tp;
  plan.pp = pp;
  plan.refusal = check_layout(c, job, tp, pp);
  if (!plan.refusal.empty()) return plan;
  plan.dp = job.gpus / (tp * pp);
  for (int s = 0; s < pp; ++s) plan.stages.push_back(stage_memory(c, job, tp, pp, s));
  plan.worst = *std::max_element(plan.stages.begin(), plan.stages.end(),
                                 [](const auto& a, const auto& b) { return a.total() < b.total(); });
  const double capacity = gpu.memory_gib * kGiB;
  plan.fits = plan.worst.total() <= capacity;
  if (!plan.fits)
    plan.why_not = fmt::format("needs {:.1f} GiB on stage {} (activations {:.1f}, optimizer {:.1f}) > {:.1f} GiB",
                               plan.worst.total() / kGiB, plan.worst.stage, plan.worst.activations / kGiB,
                               plan.worst.optimizer / kGiB, gpu.memory_gib);
  plan.time = step_time(c, gpu, job, tp, pp);
  return plan;
}

std::vector<LayoutPlan> plan_all(const LlamaConfig& c, const GpuSpec& gpu, const Job& job) {
  std::vector<LayoutPlan> plans;
  for (int tp = 1; tp <= job.gpus; ++tp) {
    if (job.gpus % tp) continue;
    for (int pp = 1; pp <= job.gpus / tp; ++pp)
      if ((job.gpus / tp) % pp == 0) plans.push_back(plan_layout(c, gpu, job, tp, pp));
  }
  std::stable_sort(plans.begin(), plans.end(), [](const LayoutPlan& a, const LayoutPlan& b) {
    auto key = [](const LayoutPlan& p) { return p.refusal.empty() ? (p.fits ? 0 : 1) : 2; };
    if (key(a) != key(b)) return key(a) < key(b);
    return a.time.tokens_per_s > b.time.tokens_per_s;
  });
  return plans;
}

}  // namespace iris::plan
