#include "src/plan/cpu_memory.h"

#include <algorithm>

#include "parallel/pipeline_schedule.h"
#include "parallel/topology.h"
#include "src/model/param_table.h"

namespace iris::plan {
namespace {
constexpr double kFloat = 4, kMiB = 1024.0 * 1024.0;
}

namespace {
// Floats of one layer's LayerActivations (src/model/llama.h): all of them (dropped = false) or only those
// `recompute` drops (dropped = true).
size_t layer_floats(const LlamaConfig& c, int tp, int B, int T, Recompute recompute, bool dropped) {
  const size_t N = static_cast<size_t>(B) * T, C = c.hidden_size, HS = c.head_dim;
  const size_t q_width = c.num_attention_heads / tp * HS, kv_width = c.num_key_value_heads / tp * HS;
  const size_t F_local = c.intermediate_size / tp, lse = static_cast<size_t>(B) * (c.num_attention_heads / tp) * T;
  const RecomputedBuffers r = RecomputedBuffers::of(recompute);
  size_t n = 0;
  auto add = [&](bool is_dropped, size_t floats) { n += is_dropped == dropped ? floats : 0; };
  add(r.ln1, N * C), add(r.rstd1, N), add(r.q, N * q_width), add(r.k, N * kv_width), add(r.v, N * kv_width);
  add(r.att, N * q_width), add(r.lse, lse), add(r.resid_mid, N * C), add(r.ln2, N * C), add(r.rstd2, N);
  add(r.gate, N * F_local), add(r.up, N * F_local), add(r.h, N * F_local);
  return n;
}
}  // namespace

size_t stage_activation_floats(const LlamaConfig& c, int tp, int pp, int stage, int B, int T, Recompute recompute) {
  const Topology topo = Topology::make(tp * pp, stage * tp, tp, pp);
  const StageLayers layers = stage_layers(c.num_hidden_layers, pp, stage);
  const size_t N = static_cast<size_t>(B) * T, L = layers.count(), C = c.hidden_size, HS = c.head_dim;
  // resid (L + 1 tensors), per layer: what the mode keeps of ln1, rstd1, q, k, v, att, lse, resid_mid, ln2,
  // rstd2, gate, up, h; rope cos/sin; last stage: lnf, rstdf, losses, xent max/sumexp/target, logits (N, V_local).
  size_t total = (L + 1) * N * C + L * layer_floats(c, tp, B, T, recompute, /*dropped=*/false) + N * HS;
  if (topo.is_last_stage()) {
    const ParamTable table = ParamTable::build(c, topo, layers);
    total += N * C + 5 * N + N * static_cast<size_t>(table.padded_vocab() / tp);
  }
  return total;
}

size_t recompute_set_floats(const LlamaConfig& c, int tp, int B, int T, Recompute recompute) {
  return layer_floats(c, tp, B, T, recompute, /*dropped=*/true);
}

double cpu_process_baseline_mib(int world) {
  // Peak RSS of rank 0 running a 32K-parameter model (docs/planning.md, "CPU backend"), measured with
  // Open MPI 4.1 on Debian 12: 18.1 MiB alone, 18.8 with 2 ranks, 21.0 with 4, 21.1 with 8 (the
  // shared-memory transport grows with the number of local peers, then levels off).
  if (world <= 1) return 18.1;
  if (world == 2) return 18.8;
  return 21.0;
}

CpuMemory cpu_rank0_memory(const LlamaConfig& c, const CpuRun& run, double baseline_mib) {
  const Topology topo = Topology::make(run.world, 0, run.tp, run.pp);
  const ParamTable table = ParamTable::build(c, topo, stage_layers(c.num_hidden_layers, run.pp, 0));
  const size_t P = table.total_numel(), dp = topo.dp;
  const size_t padded = (P + dp - 1) / dp * dp, shard = padded / dp;
  CpuMemory mem;
  mem.weights = kFloat * padded;
  mem.gradients = kFloat * padded;
  mem.adam = 2 * kFloat * std::min(shard, P);  // DP rank 0's shard starts at 0
  mem.norm_mask = kFloat * shard;
  if (dp > 1) {
    const size_t bucket = std::max<size_t>(1, std::min(static_cast<size_t>(run.bucket_mb * kMiB / kFloat), shard));
    // Our staging (bucket × dp to send, bucket to receive) plus Open MPI's own temporaries inside
    // MPI_Reduce_scatter_block, measured on rank 0: one more bucket × dp buffer with 2 ranks, two with
    // more (the recursive-halving algorithm).
    const double mpi_temporaries = dp == 2 ? 1 : 2;
    mem.dp_staging = kFloat * (bucket * dp * (1 + mpi_temporaries) + bucket);
  }
  const size_t N = static_cast<size_t>(run.micro_batch) * run.seq_len, C = c.hidden_size;
  mem.activation_sets = max_in_flight(one_f_one_b_schedule(run.pp, 0, run.grad_accum));
  mem.activations = mem.activation_sets *
                    (kFloat * stage_activation_floats(c, run.tp, run.pp, 0, run.micro_batch, run.seq_len, run.recompute) +
                     4.0 * N /* positions, int32 */);
  if (run.pp > 1) mem.pipeline_buffers = kFloat * N * C;  // stage 0: the output gradient it receives
  const size_t q_width = static_cast<size_t>(c.num_attention_heads / run.tp) * c.head_dim;
  const size_t kv_width = static_cast<size_t>(c.num_key_value_heads / run.tp) * c.head_dim;
  const size_t F_local = c.intermediate_size / run.tp;
  mem.backward_scratch = kFloat * (N * (2 * C + 2 * q_width + 2 * kv_width + 3 * F_local) + N * C +
                                   recompute_set_floats(c, run.tp, run.micro_batch, run.seq_len, run.recompute));
  // Per micro-batch tokens, targets (int32) and loss mask (float), plus the loss weights.
  mem.batches = 12.0 * N * run.grad_accum + kFloat * N;
  mem.baseline = baseline_mib * kMiB;
  return mem;
}

}  // namespace iris::plan
