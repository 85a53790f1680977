// Predicted step time for the CUDA backend. The model and its assumptions: docs/planning.md, "Step time".
// Nothing overlaps (conservative): compute, TP all-reduces and pipeline sends of a micro-batch run one
// after another, the 1F1B bubble stretches them by (p − 1)/m, ZeRO-1 communication follows the last backward.
#include <algorithm>

#include "parallel/topology.h"
#include "src/model/param_table.h"
#include "src/plan/plan.h"

namespace iris::plan {
namespace {
constexpr double kBf16 = 2, kFp32 = 4;

// Ring all-reduce: each GPU sends and receives 2(k − 1)/k of the buffer (Patarasuk & Yuan 2009);
// reduce-scatter and all-gather each move (k − 1)/k of the full buffer.
double ring_fraction(int k) { return k > 1 ? static_cast<double>(k - 1) / k : 0.0; }

// Matmul parameters on one GPU of `stage`: every 2-D tensor except the input embedding, which is a
// lookup (the tied embedding is also the LM head on the last stage).
double stage_matmul_parameters(const LlamaConfig& c, int tp, int pp, int stage) {
  const Topology topo = Topology::make(tp * pp, stage * tp, tp, pp);
  const ParamTable table = ParamTable::build(c, topo, stage_layers(c.num_hidden_layers, pp, stage));
  double n = 0;
  for (const auto& e : table.entries()) {
    if (e.local_shape.size() != 2) continue;
    if (e.name == "model.embed_tokens.weight" && !(c.tie_word_embeddings && topo.is_last_stage())) continue;
    n += static_cast<double>(e.numel);
  }
  return n;
}
}  // namespace

StepTime step_time(const LlamaConfig& c, const GpuSpec& gpu, const Job& job, int tp, int pp) {
  StepTime t;
  const int dp = job.gpus / (tp * pp);
  const int m = job.global_batch / (dp * job.micro_batch);
  t.micro_batches = m;
  const double tokens_mb = static_cast<double>(job.micro_batch) * job.seq;  // per micro-batch
  const double C = c.hidden_size;
  const double flops_rate = gpu.peak_bf16_tflops * 1e12 * gpu.gemm_efficiency;
  // Which links a group crosses: TP groups are consecutive ranks, DP groups span tp·dp consecutive
  // ranks, neighbouring stages are tp·dp ranks apart (parallel/topology.h).
  auto bandwidth = [&](bool crosses_nodes) {
    return (crosses_nodes ? gpu.network_gb_s : gpu.nvlink_gb_s) * 1e9 * gpu.comm_efficiency;
  };
  const double tp_bw = bandwidth(tp > job.gpus_per_node);
  const double dp_bw = bandwidth(tp * dp > job.gpus_per_node);
  const double pp_bw = bandwidth(tp * dp >= job.gpus_per_node);

  double slowest = 0;
  for (int stage = 0; stage < pp; ++stage) {
    const int L_stage = stage_layers(c.num_hidden_layers, pp, stage).count();
    // Hardware FLOPs per token on one GPU: 6 × local matmul parameters + attention 12·L·C·T / tp, plus
    // what recomputation adds (src/model/llama.h): selective re-runs the attention core forward
    // (4·L·C·T), full re-runs the layer forward up to the SwiGLU product (2 × the layer's matmul
    // parameters but down_proj, + 4·L·C·T).
    const double matmul = stage_matmul_parameters(c, tp, pp, stage);
    const double attention = 12.0 * L_stage * C * job.seq / tp;
    const double Cq = static_cast<double>(c.num_attention_heads) * c.head_dim,
                 Ckv = static_cast<double>(c.num_key_value_heads) * c.head_dim;
    const double rerun_matmul = L_stage * C * (2 * Cq + 2 * Ckv + 2.0 * c.intermediate_size) / tp;
    double flops = 6.0 * matmul + attention;
    if (job.recompute == Recompute::Selective) flops += attention / 3;
    if (job.recompute == Recompute::Full) flops += 2.0 * rerun_matmul + attention / 3;
    const double compute = m * tokens_mb * flops / flops_rate;
    // Megatron TP: per layer two all-reduces of the (b·s, C) activations forward (after o_proj and
    // down_proj) and two backward (input gradients of q/k/v and gate/up); full recompute repeats the
    // o_proj one (the re-run stops before down_proj); the vocab-parallel embedding adds one forward on
    // the first stage.
    const int per_layer = job.recompute == Recompute::Full ? 5 : 4;
    const double all_reduces = L_stage * per_layer + (stage == 0 ? 1 : 0);
    // The GPU stage all-reduces these activations in fp32 (src/model/cuda/llama_stage.h: fp32 staging).
    const double tp_comm = m * all_reduces * 2 * ring_fraction(tp) * kFp32 * tokens_mb * C / tp_bw;
    // 1F1B: each micro-batch sends its activations forward and receives their gradient (bf16 (b·s, C)).
    const double sends = (stage > 0 ? 1 : 0) + (stage < pp - 1 ? 1 : 0);
    const double pp_comm = pp > 1 ? m * sends * kBf16 * tokens_mb * C / pp_bw : 0.0;
    const double total = compute + tp_comm + pp_comm;
    if (total > slowest) {
      slowest = total;
      t.compute = compute;
      t.tp_comm = tp_comm;
      t.pp_comm = pp_comm;
    }
  }
  t.bubble = slowest * (pp - 1) / static_cast<double>(m);  // Narayanan et al. 2021, sec. 2.2.1
  // ZeRO-1 (Megatron distributed optimizer): reduce-scatter of fp32 gradients, all-gather of bf16 weights.
  double local = 0;
  for (int stage = 0; stage < pp; ++stage) {
    const Topology topo = Topology::make(tp * pp, stage * tp, tp, pp);
    local = std::max(local, static_cast<double>(
                                ParamTable::build(c, topo, stage_layers(c.num_hidden_layers, pp, stage)).total_numel()));
  }
  t.dp_comm = ring_fraction(dp) * local * (kFp32 + kBf16) / dp_bw;
  t.step = slowest + t.bubble + t.dp_comm;
  t.tokens_per_s = static_cast<double>(job.global_batch) * job.seq / t.step;
  t.mfu = t.tokens_per_s * flops_per_token(c, job.seq) / (job.gpus * gpu.peak_bf16_tflops * 1e12);
  return t;
}

}  // namespace iris::plan
