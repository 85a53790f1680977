#include "src/model/llama.h"

#include <cmath>

#include "parallel/tp_comm.h"
#include "src/core/check.h"
#include "src/kernels/cpu/ops.h"

namespace iris {

Recompute parse_recompute(const std::string& text, const std::string& key) {
  if (text == "none") return Recompute::None;
  if (text == "selective") return Recompute::Selective;
  if (text == "full") return Recompute::Full;
  throw UserError(fmt::format("{} must be none, selective or full, got \"{}\"", key, text));
}

const char* to_string(Recompute recompute) {
  switch (recompute) {
    case Recompute::None: return "none";
    case Recompute::Selective: return "selective";
    case Recompute::Full: return "full";
  }
  return "?";
}

RecomputedBuffers RecomputedBuffers::of(Recompute mode) {
  RecomputedBuffers r;
  if (mode == Recompute::Selective) r.att = r.lse = r.h = true;
  if (mode == Recompute::Full) r = {true, true, true, true, true, true, true, true, true, true, true, true, true};
  return r;
}

namespace {

// Carves the buffers of one LayerActivations with take(n): those `dropped` marks when shared_set (the
// stage's recompute set), the others otherwise (a micro-batch's layer); leaves the rest of `a` as it is.

}  // namespace

LlamaStage::LlamaStage(const LlamaConfig& config, const Topology& topo, const ParamTable& table, StageLayers layers,
                       int B, int T, Comm* tp, Recompute recompute)
    : config_(config), topo_(topo), stage_layers_(layers), tp_(tp), recompute_(recompute), B_(B), T_(T) {
  C_ = config.hidden_size;
  HS_ = config.head_dim;
  NH_local_ = config.num_attention_heads / topo.tp;
  NKV_local_ = config.num_key_value_heads / topo.tp;
  F_local_ = config.intermediate_size / topo.tp;
  IRIS_CHECK(!tp || tp->size() == topo.tp, "tp communicator size {} != tp {}", tp ? tp->size() : 1, topo.tp);
  offsets_ = stage_offsets(config, topo, table, layers);
  inv_freq_ = config.rope_inv_freq();

  const size_t N = static_cast<size_t>(B) * T;
  const size_t q_width = static_cast<size_t>(NH_local_) * HS_, kv_width = static_cast<size_t>(NKV_local_) * HS_;
  const size_t lse = static_cast<size_t>(B) * NH_local_ * T;
  const RecomputedBuffers dropped = RecomputedBuffers::of(recompute);
  size_t shared_floats = 0;
  LayerActivations sizing{};
  carve_layer(sizing, dropped, /*shared_set=*/true, [&](float*&, size_t n) { shared_floats += n; }, N, C_, q_width,
              kv_width, lse, F_local_);
  scratch_ = std::make_unique<Arena>(N * (2 * C_ + 2 * q_width + 2 * kv_width + 3 * static_cast<size_t>(F_local_)) +
                                     shared_floats);
  auto take = [&](size_t n) { return scratch_->take(n); };
  carve_layer(shared_, dropped, /*shared_set=*/true, [&](float*& buffer, size_t n) { buffer = take(n); }, N, C_,
              q_width, kv_width, lse, F_local_);
  dln_ = take(N * C_);
  dtmp_ = take(N * C_);
  dq_ = take(N * q_width);
  datt_ = take(N * q_width);
  dk_ = take(N * kv_width);
  dv_ = take(N * kv_width);
  dgate_ = take(N * F_local_);
  dup_ = take(N * F_local_);
  dh_ = take(N * F_local_);
}

std::unique_ptr<StageActivations> LlamaStage::make_activations() const {
  const size_t N = static_cast<size_t>(B_) * T_, L = offsets_.layers.size();
  const size_t q_width = static_cast<size_t>(NH_local_) * HS_, kv_width = static_cast<size_t>(NKV_local_) * HS_;
  const size_t lse = static_cast<size_t>(B_) * NH_local_ * T_;
  const RecomputedBuffers dropped = RecomputedBuffers::of(recompute_);
  size_t per_layer = 0;
  LayerActivations sizing{};
  carve_layer(sizing, dropped, /*shared_set=*/false, [&](float*&, size_t n) { per_layer += n; }, N, C_, q_width,
              kv_width, lse, F_local_);
  size_t total = (L + 1) * N * C_ + L * per_layer + N * HS_;
  if (topo_.is_last_stage()) total += N * C_ + 5 * N + N * static_cast<size_t>(offsets_.V_local);
  auto acts = std::make_unique<StageActivations>(total);
  auto take = [&](size_t n) { return acts->arena.take(n); };
  for (size_t i = 0; i <= L; ++i) acts->resid.push_back(take(N * C_));
  for (size_t i = 0; i < L; ++i) {
    LayerActivations a = shared_;  // the dropped buffers point at the stage's recompute set
    carve_layer(a, dropped, /*shared_set=*/false, [&](float*& buffer, size_t n) { buffer = take(n); }, N, C_, q_width,
                kv_width, lse, F_local_);
    acts->layers.push_back(a);
  }
  acts->rope_cos = take(N * HS_ / 2);
  acts->rope_sin = take(N * HS_ / 2);
  if (topo_.is_last_stage()) {
    acts->lnf = take(N * C_);
    acts->rstdf = take(N);
    acts->losses = take(N);
    acts->xent_max = take(N);
    acts->xent_sumexp = take(N);
    acts->xent_target = take(N);
    acts->logits = take(N * offsets_.V_local);
  }
  IRIS_CHECK(acts->arena.used() == total, "activation layout mismatch");
  acts->positions.resize(N);
  return acts;
}

void LlamaStage::tp_all_reduce(float* data, size_t count, ReduceOp op) const {
  if (tp_ && tp_->size() > 1) tp_->all_reduce(data, count, op);
}

void LlamaStage::layer_forward(LayerActivations& a, float* out, const float* inp, const float* params,
                               const LayerWeights& w, const StageActivations& acts, const MicroBatch& batch) const {
  const int N = B_ * T_, QW = NH_local_ * HS_, KW = NKV_local_ * HS_;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const size_t NC = static_cast<size_t>(N) * C_;
  cpu::rmsnorm_forward(a.ln1, a.rstd1, inp, params + w.ln1, N, C_, eps);
  copy_to_tp_region_forward(tp_, a.ln1, NC);  // q/k/v are column-parallel
  cpu::matmul_forward(a.q, a.ln1, params + w.q, N, C_, QW);
  cpu::matmul_forward(a.k, a.ln1, params + w.k, N, C_, KW);
  cpu::matmul_forward(a.v, a.ln1, params + w.v, N, C_, KW);
  cpu::rope_forward(a.q, acts.rope_cos, acts.rope_sin, N, NH_local_, HS_);
  cpu::rope_forward(a.k, acts.rope_cos, acts.rope_sin, N, NKV_local_, HS_);
  cpu::attention_forward(a.att, a.lse, a.q, a.k, a.v, batch.doc, B_, T_, NH_local_, NKV_local_, HS_);
  // o_proj is row-parallel: each TP rank holds a partial sum of the output.
  cpu::matmul_forward(a.resid_mid, a.att, params + w.o, N, QW, C_);
  reduce_from_tp_region_forward(tp_, a.resid_mid, NC);
  cpu::add_inplace(a.resid_mid, inp, NC);

  cpu::rmsnorm_forward(a.ln2, a.rstd2, a.resid_mid, params + w.ln2, N, C_, eps);
  copy_to_tp_region_forward(tp_, a.ln2, NC);  // gate/up are column-parallel
  cpu::matmul_forward(a.gate, a.ln2, params + w.gate, N, C_, F_local_);
  cpu::matmul_forward(a.up, a.ln2, params + w.up, N, C_, F_local_);
  cpu::swiglu_forward(a.h, a.gate, a.up, N, F_local_);
  if (out == nullptr) return;  // a full-recompute re-run: backward needs nothing past h
  cpu::matmul_forward(out, a.h, params + w.down, N, F_local_, C_);  // down is row-parallel
  reduce_from_tp_region_forward(tp_, out, NC);
  cpu::add_inplace(out, a.resid_mid, NC);
}

double LlamaStage::forward(StageActivations& acts, const float* params, const MicroBatch& batch,
                           const float* input) const {
  const int N = B_ * T_;
  for (int i = 0; i < N; ++i) acts.positions[i] = batch.positions ? batch.positions[i] : i % T_;
  cpu::rope_tables(acts.rope_cos, acts.rope_sin, acts.positions.data(), inv_freq_.data(), N, HS_);

  if (topo_.is_first_stage()) {
    cpu::embedding_forward(acts.resid[0], batch.tokens, params + offsets_.embed, N, C_,
                           static_cast<int>(offsets_.vocab_start), static_cast<int>(offsets_.V_local));
    reduce_from_tp_region_forward(tp_, acts.resid[0], static_cast<size_t>(N) * C_);  // vocab-parallel rows sum up
  } else {
    std::copy(input, input + static_cast<size_t>(N) * C_, acts.resid[0]);
  }
  for (size_t l = 0; l < offsets_.layers.size(); ++l)
    layer_forward(acts.layers[l], acts.resid[l + 1], acts.resid[l], params, offsets_.layers[l], acts, batch);
  if (!topo_.is_last_stage()) return 0.0;

  // Final norm, vocab-parallel LM head and cross-entropy; the full logits are never gathered.
  cpu::rmsnorm_forward(acts.lnf, acts.rstdf, acts.resid.back(), params + offsets_.norm, N, C_,
                       static_cast<float>(config_.rms_norm_eps));
  copy_to_tp_region_forward(tp_, acts.lnf, static_cast<size_t>(N) * C_);  // the LM head is vocab (column) parallel
  cpu::matmul_forward(acts.logits, acts.lnf, params + offsets_.head, N, C_, static_cast<int>(offsets_.V_local));
  const int VL = static_cast<int>(offsets_.V_local), VV = static_cast<int>(offsets_.V_valid), vs = static_cast<int>(offsets_.vocab_start);
  cpu::xent_local_max(acts.xent_max, acts.logits, N, VL, VV);
  tp_all_reduce(acts.xent_max, N, ReduceOp::Max);
  cpu::xent_local_sumexp(acts.xent_sumexp, acts.xent_target, acts.logits, acts.xent_max, batch.targets, N, VL, VV, vs);
  tp_all_reduce(acts.xent_sumexp, N, ReduceOp::Sum);
  tp_all_reduce(acts.xent_target, N, ReduceOp::Sum);
  cpu::xent_losses(acts.losses, acts.xent_max, acts.xent_sumexp, acts.xent_target, N);
  double loss = 0.0;
  for (int i = 0; i < N; ++i) loss += static_cast<double>(batch.loss_weight[i]) * acts.losses[i];
  return loss;
}

void LlamaStage::recompute_layer(size_t l, StageActivations& acts, const float* params,
                                 const MicroBatch& batch) const {
  LayerActivations& a = acts.layers[l];
  switch (recompute_) {
    case Recompute::None:
      return;
    case Recompute::Selective:
      cpu::attention_forward(a.att, a.lse, a.q, a.k, a.v, batch.doc, B_, T_, NH_local_, NKV_local_, HS_);
      cpu::swiglu_forward(a.h, a.gate, a.up, B_ * T_, F_local_);
      return;
    case Recompute::Full:
      layer_forward(a, /*out=*/nullptr, acts.resid[l], params, offsets_.layers[l], acts, batch);
      return;
  }
}

void LlamaStage::layer_backward(LayerActivations& a, float* dresid, const float* inp, const float* params,
                                float* grads, const LayerWeights& w, const StageActivations& acts,
                                const MicroBatch& batch) const {
  const int N = B_ * T_, QW = NH_local_ * HS_, KW = NKV_local_ * HS_;
  const size_t NC = static_cast<size_t>(N) * C_;
  // MLP block: out = resid_mid + down(silu(gate(ln2)) · up(ln2)); dresid holds d(out).
  reduce_from_tp_region_backward(tp_, dresid, NC);
  cpu::matmul_backward(dh_, grads + w.down, dresid, a.h, params + w.down, N, F_local_, C_);
  cpu::swiglu_backward(dgate_, dup_, dh_, a.gate, a.up, N, F_local_);
  cpu::matmul_backward(dln_, grads + w.gate, dgate_, a.ln2, params + w.gate, N, C_, F_local_);
  cpu::matmul_backward(dln_, grads + w.up, dup_, a.ln2, params + w.up, N, C_, F_local_, /*accumulate_dinp=*/true);
  copy_to_tp_region_backward(tp_, dln_, NC);
  cpu::rmsnorm_backward(dtmp_, grads + w.ln2, dln_, a.resid_mid, params + w.ln2, a.rstd2, N, C_);
  cpu::add_inplace(dresid, dtmp_, NC);  // dresid is now d(resid_mid)

  // Attention block: resid_mid = inp + o_proj(attention(rope(q), rope(k), v)).
  reduce_from_tp_region_backward(tp_, dresid, NC);
  cpu::matmul_backward(datt_, grads + w.o, dresid, a.att, params + w.o, N, QW, C_);
  cpu::attention_backward(dq_, dk_, dv_, datt_, a.q, a.k, a.v, a.att, a.lse, batch.doc, B_, T_, NH_local_, NKV_local_,
                          HS_);
  cpu::rope_backward(dq_, acts.rope_cos, acts.rope_sin, N, NH_local_, HS_);
  cpu::rope_backward(dk_, acts.rope_cos, acts.rope_sin, N, NKV_local_, HS_);
  cpu::matmul_backward(dln_, grads + w.q, dq_, a.ln1, params + w.q, N, C_, QW);
  cpu::matmul_backward(dln_, grads + w.k, dk_, a.ln1, params + w.k, N, C_, KW, true);
  cpu::matmul_backward(dln_, grads + w.v, dv_, a.ln1, params + w.v, N, C_, KW, true);
  copy_to_tp_region_backward(tp_, dln_, NC);
  cpu::rmsnorm_backward(dtmp_, grads + w.ln1, dln_, inp, params + w.ln1, a.rstd1, N, C_);
  cpu::add_inplace(dresid, dtmp_, NC);  // dresid is now d(inp)
}

void LlamaStage::backward(StageActivations& acts, const float* params, float* grads, const MicroBatch& batch,
                          const float* dout, float* dinput, const GradsReady& ready) const {
  const int N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C_;
  // The residual gradient runs backwards through the layers in place, in a buffer of its own.
  std::vector<float>& dresid_storage = dresid_buffer_;
  dresid_storage.resize(NC);
  float* dresid = dresid_storage.data();
  if (topo_.is_last_stage()) {
    const int VL = static_cast<int>(offsets_.V_local), VV = static_cast<int>(offsets_.V_valid), vs = static_cast<int>(offsets_.vocab_start);
    float* dlogits = acts.logits;  // in place
    cpu::xent_backward(dlogits, acts.logits, acts.xent_max, acts.xent_sumexp, batch.targets, batch.loss_weight, N, VL,
                       VV, vs);
    cpu::matmul_backward(dln_, grads + offsets_.head, dlogits, acts.lnf, params + offsets_.head, N, C_, VL);
    copy_to_tp_region_backward(tp_, dln_, NC);
    cpu::rmsnorm_backward(dresid, grads + offsets_.norm, dln_, acts.resid.back(), params + offsets_.norm, acts.rstdf, N,
                          C_);
    if (ready) ready(offsets_.norm);
  } else {
    std::copy(dout, dout + NC, dresid);
  }
  for (size_t l = offsets_.layers.size(); l-- > 0;) {
    recompute_layer(l, acts, params, batch);
    layer_backward(acts.layers[l], dresid, acts.resid[l], params, grads, offsets_.layers[l], acts, batch);
    if (ready) ready(offsets_.layers[l].ln1);
  }
  if (topo_.is_first_stage()) {
    cpu::embedding_backward(grads + offsets_.embed, dresid, batch.tokens, N, C_, static_cast<int>(offsets_.vocab_start),
                            static_cast<int>(offsets_.V_local));
  } else {
    std::copy(dresid, dresid + NC, dinput);
  }
}

}  // namespace iris
