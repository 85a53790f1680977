#include "src/infer/cpu_decoder.h"

#include <algorithm>

#include "parallel/tp_comm.h"
#include "src/core/check.h"
#include "src/kernels/cpu/decode_attention.h"
#include "src/kernels/cpu/matmul_few_rows.h"
#include "src/kernels/cpu/ops.h"

namespace iris::infer {
namespace {

// out (N, OC) = inp (N, IC) · weight^T: OpenBLAS for a prefill, one pass over the weight for a decode step.
void linear(float* out, const float* inp, const float* weight, int N, int IC, int OC) {
  if (N <= cpu::kFewRows)
    cpu::matmul_forward_few_rows(out, inp, weight, N, IC, OC);
  else
    cpu::matmul_forward(out, inp, weight, N, IC, OC);
}

}  // namespace

KvCache::KvCache(int L, int slots_, int T_max_, int NKV_local_, int HS_)
    : slots(slots_), T_max(T_max_), NKV_local(NKV_local_), HS(HS_), lengths(static_cast<size_t>(slots_), 0) {
  for (int l = 0; l < L; ++l) {
    k.emplace_back(static_cast<size_t>(slots) * slot_floats(), 0.0f);
    v.emplace_back(static_cast<size_t>(slots) * slot_floats(), 0.0f);
  }
}

void KvCache::write(int l, const float* k_rows, const float* v_rows, const int32_t* slot, const int32_t* pos, int N) {
  for (int n = 0; n < N; ++n) {
    IRIS_CHECK(pos[n] < T_max, "KV cache: position {} past the cache's {} positions", pos[n], T_max);
    for (int h = 0; h < NKV_local; ++h) {
      const size_t dst = static_cast<size_t>(slot[n]) * slot_floats() + (static_cast<size_t>(h) * T_max + pos[n]) * HS;
      const size_t src = (static_cast<size_t>(n) * NKV_local + h) * HS;
      std::copy(k_rows + src, k_rows + src + HS, k[l].data() + dst);
      std::copy(v_rows + src, v_rows + src + HS, v[l].data() + dst);
    }
  }
}

CpuDecoder::CpuDecoder(const LlamaConfig& config, const Topology& topo, Comm* tp, const float* params, int slots,
                       int T_max)
    : config_(config),
      topo_(topo),
      tp_(tp),
      table_(ParamTable::build(config, topo, StageLayers{0, config.num_hidden_layers})),
      params_(params),
      inv_freq_(config.rope_inv_freq()),
      cache_(config.num_hidden_layers, slots, T_max, config.num_key_value_heads / topo.tp, config.head_dim) {
  IRIS_CHECK(topo.pp == 1, "generation runs every layer on one stage (pp = 1), got pp = {}", topo.pp);
  IRIS_CHECK(!tp || tp->size() == topo.tp, "tp communicator size {} != tp {}", tp ? tp->size() : 1, topo.tp);
  offsets_ = stage_offsets(config, topo, table_, StageLayers{0, config.num_hidden_layers});
  C_ = config.hidden_size;
  HS_ = config.head_dim;
  NH_local_ = config.num_attention_heads / topo.tp;
  NKV_local_ = config.num_key_value_heads / topo.tp;
  F_local_ = config.intermediate_size / topo.tp;
}

void CpuDecoder::ensure_rows(int N) {
  if (N <= rows_) return;
  rows_ = N;
  const size_t n = static_cast<size_t>(N);
  resid_.resize(n * C_);
  ln_.resize(n * C_);
  lnf_.resize(n * C_);
  tmp_.resize(n * C_);
  rstd_.resize(n);
  q_.resize(n * NH_local_ * HS_);
  att_.resize(n * NH_local_ * HS_);
  lse_.resize(n * NH_local_);
  k_.resize(n * NKV_local_ * HS_);
  v_.resize(n * NKV_local_ * HS_);
  gate_.resize(n * F_local_);
  up_.resize(n * F_local_);
  cos_.resize(n * HS_ / 2);
  sin_.resize(n * HS_ / 2);
  lengths_.resize(n);
}

void CpuDecoder::attention(int l, const int32_t* slot, int N, bool prefill) {
  if (prefill) {  // one sequence from position 0: the training kernel's causal attention over the fresh k, v
    cpu::attention_forward(att_.data(), lse_.data(), q_.data(), k_.data(), v_.data(), nullptr, 1, N, NH_local_,
                           NKV_local_, HS_);
    return;
  }
  // Each row's own sequence: its cache up to and including the position just written.
  for (int n = 0; n < N; ++n) lengths_[n] = cache_.lengths[slot[n]] + 1;
  cpu::decode_attention_forward(att_.data(), q_.data(), cache_.k[l].data(), cache_.v[l].data(), slot,
                                lengths_.data(), N, NH_local_, NKV_local_, HS_, cache_.T_max);
}

void CpuDecoder::forward_rows(const int32_t* tokens, const int32_t* slot, const int32_t* pos, int N, bool prefill) {
  ensure_rows(N);
  const size_t NC = static_cast<size_t>(N) * C_;
  const int QW = NH_local_ * HS_, KW = NKV_local_ * HS_;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const float* P = params_;
  cpu::rope_tables(cos_.data(), sin_.data(), pos, inv_freq_.data(), N, HS_);
  cpu::embedding_forward(resid_.data(), tokens, P + offsets_.embed, N, C_, static_cast<int>(offsets_.vocab_start),
                         static_cast<int>(offsets_.V_local));
  reduce_from_tp_region_forward(tp_, resid_.data(), NC);  // vocab-parallel rows sum up
  std::vector<int32_t> row_slot(prefill ? static_cast<size_t>(N) : 0, prefill ? slot[0] : 0);
  const int32_t* write_slot = prefill ? row_slot.data() : slot;
  for (size_t l = 0; l < offsets_.layers.size(); ++l) {
    const auto& w = offsets_.layers[l];
    cpu::rmsnorm_forward(ln_.data(), rstd_.data(), resid_.data(), P + w.ln1, N, C_, eps);
    linear(q_.data(), ln_.data(), P + w.q, N, C_, QW);  // q/k/v column-parallel
    linear(k_.data(), ln_.data(), P + w.k, N, C_, KW);
    linear(v_.data(), ln_.data(), P + w.v, N, C_, KW);
    cpu::rope_forward(q_.data(), cos_.data(), sin_.data(), N, NH_local_, HS_);
    cpu::rope_forward(k_.data(), cos_.data(), sin_.data(), N, NKV_local_, HS_);
    cache_.write(static_cast<int>(l), k_.data(), v_.data(), write_slot, pos, N);
    attention(static_cast<int>(l), slot, N, prefill);
    linear(tmp_.data(), att_.data(), P + w.o, N, QW, C_);  // o_proj row-parallel: partial sums
    reduce_from_tp_region_forward(tp_, tmp_.data(), NC);
    cpu::add_inplace(resid_.data(), tmp_.data(), NC);
    cpu::rmsnorm_forward(ln_.data(), rstd_.data(), resid_.data(), P + w.ln2, N, C_, eps);
    linear(gate_.data(), ln_.data(), P + w.gate, N, C_, F_local_);
    linear(up_.data(), ln_.data(), P + w.up, N, C_, F_local_);
    cpu::swiglu_forward(gate_.data(), gate_.data(), up_.data(), N, F_local_);
    linear(tmp_.data(), gate_.data(), P + w.down, N, F_local_, C_);  // down row-parallel
    reduce_from_tp_region_forward(tp_, tmp_.data(), NC);
    cpu::add_inplace(resid_.data(), tmp_.data(), NC);
  }
  cpu::rmsnorm_forward(lnf_.data(), rstd_.data(), resid_.data(), P + offsets_.norm, N, C_, eps);
}

void CpuDecoder::head(float* logits, const int* rows, int N) {
  const int VL = static_cast<int>(offsets_.V_local);
  const size_t n = static_cast<size_t>(N);
  logits_local_.resize(n * VL);
  // Only the rows that are sampled: a prefill needs the last position's logits alone.
  for (int i = 0; i < N; ++i)
    std::copy(lnf_.begin() + static_cast<size_t>(rows[i]) * C_, lnf_.begin() + static_cast<size_t>(rows[i] + 1) * C_,
              ln_.begin() + static_cast<size_t>(i) * C_);
  linear(logits_local_.data(), ln_.data(), params_ + offsets_.head, N, C_, VL);
  const int V = config_.vocab_size;
  if (topo_.tp == 1) {
    for (int i = 0; i < N; ++i)
      std::copy_n(logits_local_.data() + static_cast<size_t>(i) * VL, V, logits + static_cast<size_t>(i) * V);
    return;
  }
  // Vocab-parallel: TP rank r holds vocab rows [r·V_local, (r+1)·V_local) of every row; sampling needs
  // them all (padding rows past V dropped).
  gathered_.resize(static_cast<size_t>(topo_.tp) * n * VL);
  tp_->all_gather(logits_local_.data(), gathered_.data(), n * VL);
  for (int i = 0; i < N; ++i)
    for (int r = 0; r < topo_.tp; ++r)
      for (int j = 0; j < VL && r * VL + j < V; ++j)
        logits[static_cast<size_t>(i) * V + r * VL + j] = gathered_[(static_cast<size_t>(r) * N + i) * VL + j];
}

void CpuDecoder::prefill(float* logits, int slot, const int32_t* tokens, int T) {
  IRIS_CHECK(T >= 1 && T <= cache_.T_max, "prefill of {} tokens into a cache of {} positions", T, cache_.T_max);
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) pos[t] = t;
  const int32_t s = slot;
  forward_rows(tokens, &s, pos.data(), T, /*prefill=*/true);
  cache_.lengths[slot] = T;
  const int last = T - 1;
  head(logits, &last, 1);
}

void CpuDecoder::decode(float* logits, const int32_t* slot, const int32_t* tokens, int B) {
  std::vector<int32_t> pos(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) pos[b] = cache_.lengths[slot[b]];
  forward_rows(tokens, slot, pos.data(), B, /*prefill=*/false);
  std::vector<int> rows(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) {
    cache_.lengths[slot[b]] += 1;
    rows[b] = b;
  }
  head(logits, rows.data(), B);
}

}  // namespace iris::infer
