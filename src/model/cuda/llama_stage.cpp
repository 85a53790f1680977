// CudaLlamaStage: LlamaStage's forward and backward (src/model/llama.cpp, read them side by side) queued as
// CUDA kernels on one stream. Where the CPU stage adds the residual in a separate pass, the GPU stage uses
// the fused residual + RMSNorm kernel (attention block) and accumulating backward kernels (dinp +=); the
// TP all-reduces sit where the CPU stage's copy_to/reduce_from_tp_region calls do (parallel/tp_comm.h).
#include "src/model/cuda/llama_stage.h"

#include <algorithm>
#include <type_traits>

#include "parallel/device_comm.h"

#include "src/core/check.h"
#include "src/kernels/cuda/attention.cuh"
#include "src/kernels/cuda/elementwise.cuh"
#include "src/kernels/cuda/embedding.cuh"
#include "src/kernels/cuda/rmsnorm.cuh"
#include "src/kernels/cuda/rope.cuh"
#include "src/kernels/cuda/swiglu.cuh"
#include "src/kernels/cuda/xent.cuh"

namespace iris {

namespace {

// carve_layer's take for a device arena: each buffer in its own element type.
auto arena_take(DeviceArena& arena) {
  return [&arena](auto*& buffer, size_t n) {
    buffer = arena.take<std::remove_pointer_t<std::decay_t<decltype(buffer)>>>(n);
  };
}

}  // namespace

CudaLlamaStage::CudaLlamaStage(const LlamaConfig& config, const Topology& topo, const ParamTable& table,
                               StageLayers layers, int B, int T, Comm* tp, cudaStream_t stream, Recompute recompute,
                               DType grad_dtype)
    : config_(config), topo_(topo), tp_(tp), stream_(stream), recompute_(recompute), grad_dtype_(grad_dtype), B_(B),
      T_(T) {
  IRIS_CHECK(grad_dtype == DType::F32 || grad_dtype == DType::BF16, "the GPU model stage's gradients are fp32 or "
             "bf16, not {}", dtype_name(grad_dtype));
  IRIS_CHECK(topo.tp == 1 || tp != nullptr, "the GPU model stage at tp = {} needs its tp communicator", topo.tp);
  IRIS_CHECK(tp == nullptr || tp->size() == topo.tp, "tp communicator size {} != tp {}", tp ? tp->size() : 1,
             topo.tp);
  IRIS_USER_CHECK(!tp_active() || dynamic_cast<DeviceComm*>(tp) != nullptr,
                  "the GPU model stage at tp = {} all-reduces device buffers, but its tp group ({}) is a host "
                  "communicator; build the groups with make_device_communicators (parallel.comm nccl or mpi)",
                  topo.tp, tp ? tp->name() : std::string("none"));
  C_ = config.hidden_size;
  HS_ = config.head_dim;
  NH_local_ = config.num_attention_heads / topo.tp;
  NKV_local_ = config.num_key_value_heads / topo.tp;
  F_local_ = config.intermediate_size / topo.tp;
  IRIS_USER_CHECK(HS_ % 32 == 0 && HS_ <= 256,
                  "the GPU attention kernels need a head size that is a multiple of 32, at most 256 (tensor cores "
                  "for 64 and 128); {} has head_dim {}",
                  config.source, HS_);
  offsets_ = stage_offsets(config, topo, table, layers);

  matmul_ = std::make_unique<cuda::Matmul>();
  const size_t N = static_cast<size_t>(B) * T;
  const size_t QW = static_cast<size_t>(NH_local_) * HS_, KW = static_cast<size_t>(NKV_local_) * HS_;
  const size_t F = F_local_, lse = static_cast<size_t>(B) * NH_local_ * T;
  const RecomputedBuffers dropped = RecomputedBuffers::of(recompute);
  if (grad_dtype == DType::BF16 && topo.is_first_stage())
    embed_workspace_bytes_ =
        cuda::embedding_backward_workspace_bytes(static_cast<int>(N), static_cast<int>(offsets_.V_local));
  auto carve_scratch = [&] {
    inv_freq_ = scratch_.take<float>(HS_ / 2);
    proj_ = scratch_.take<bf16>(N * C_);
    dresid_ = scratch_.take<bf16>(N * C_);
    dln_ = scratch_.take<bf16>(N * C_);
    dq_ = scratch_.take<bf16>(N * QW);
    datt_ = scratch_.take<bf16>(N * QW);
    dk_ = scratch_.take<bf16>(N * KW);
    dv_ = scratch_.take<bf16>(N * KW);
    delta_ = scratch_.take<float>(lse);
    dgate_ = scratch_.take<bf16>(N * F);
    dup_ = scratch_.take<bf16>(N * F);
    dh_ = scratch_.take<bf16>(N * F);
    if (tp_active()) tp_staging_ = scratch_.take<float>(N * C_);
    if (embed_workspace_bytes_ > 0) embed_workspace_ = scratch_.take<unsigned char>(embed_workspace_bytes_);
    carve_layer(shared_, dropped, /*shared_set=*/true, arena_take(scratch_), N, C_, QW, KW, lse, F);
  };
  carve_scratch();  // sizes
  scratch_.allocate();
  carve_scratch();  // hands out
  const std::vector<float> inv_freq = config.rope_inv_freq();
  IRIS_CUDA_CHECK(cudaMemcpy(inv_freq_, inv_freq.data(), inv_freq.size() * sizeof(float), cudaMemcpyHostToDevice));
}

CudaLlamaStage::~CudaLlamaStage() = default;

void CudaLlamaStage::carve(CudaStageActivations& acts) const {
  const size_t N = static_cast<size_t>(B_) * T_, L = offsets_.layers.size();
  const size_t QW = static_cast<size_t>(NH_local_) * HS_, KW = static_cast<size_t>(NKV_local_) * HS_;
  const size_t lse = static_cast<size_t>(B_) * NH_local_ * T_;
  const RecomputedBuffers dropped = RecomputedBuffers::of(recompute_);
  DeviceArena& arena = acts.arena;
  acts.resid.clear();
  acts.layers.clear();
  for (size_t i = 0; i <= L; ++i) acts.resid.push_back(arena.take<bf16>(N * C_));
  for (size_t i = 0; i < L; ++i) {
    CudaLayerActivations a = shared_;  // the dropped buffers point at the stage's recompute set
    carve_layer(a, dropped, /*shared_set=*/false, arena_take(arena), N, C_, QW, KW, lse, F_local_);
    acts.layers.push_back(a);
  }
  acts.rope_cos = arena.take<float>(N * HS_ / 2);
  acts.rope_sin = arena.take<float>(N * HS_ / 2);
  acts.tokens = arena.take<int32_t>(N);
  acts.targets = arena.take<int32_t>(N);
  acts.loss_weight = arena.take<float>(N);
  acts.positions = arena.take<int32_t>(N);
  acts.doc = arena.take<int32_t>(N);
  if (topo_.is_last_stage()) {
    acts.lnf = arena.take<bf16>(N * C_);
    acts.rstdf = arena.take<float>(N);
    acts.losses = arena.take<float>(N);
    acts.xent_max = arena.take<float>(N);
    acts.xent_sumexp = arena.take<float>(N);
    acts.xent_target = arena.take<float>(N);
    acts.logits = arena.take<bf16>(N * static_cast<size_t>(offsets_.V_local));
  }
}

std::unique_ptr<CudaStageActivations> CudaLlamaStage::make_activations() const {
  auto acts = std::make_unique<CudaStageActivations>();
  carve(*acts);  // sizes
  const size_t bytes = acts->arena.used_bytes();
  acts->arena.allocate();
  carve(*acts);  // hands out
  IRIS_CHECK(acts->arena.used_bytes() == bytes, "activation layout differs between the sizing and carving passes");
  acts->host_losses.resize(static_cast<size_t>(B_) * T_);
  return acts;
}

void CudaLlamaStage::tp_all_reduce(float* data, size_t count, ReduceOp op) {
  if (!tp_active()) return;
  // DeviceComm orders the operation after the work queued on its compute stream, which must be ours.
  IRIS_CHECK(static_cast<DeviceComm*>(tp_)->compute_stream() == stream_,
             "the tp group's compute stream is not the GPU model stage's stream; call set_compute_stream with "
             "stage.stream() before forward/backward");
  tp_->all_reduce(data, count, op);
}

void CudaLlamaStage::tp_all_reduce(bf16* data, size_t count) {
  if (!tp_active()) return;
  cuda::cast_bf16_to_f32(tp_staging_, data, count, stream_);  // exact
  tp_all_reduce(tp_staging_, count, ReduceOp::Sum);
  cuda::cast_f32_to_bf16(data, tp_staging_, count, stream_);
}

void CudaLlamaStage::row_parallel_forward(bf16* out, const bf16* inp, const bf16* weight, int IC) {
  const int N = B_ * T_;
  if (!tp_active()) {
    matmul_->forward(out, inp, weight, N, IC, C_, stream_);
    return;
  }
  // Each rank's partial product stays fp32 through the sum and is rounded to bf16 once (header).
  matmul_->forward(tp_staging_, inp, weight, N, IC, C_, stream_);
  tp_all_reduce(tp_staging_, static_cast<size_t>(N) * C_, ReduceOp::Sum);
  cuda::cast_f32_to_bf16(out, tp_staging_, static_cast<size_t>(N) * C_, stream_);
}

void CudaLlamaStage::layer_forward(CudaLayerActivations& a, bf16* out, const bf16* inp, const bf16* params,
                                   const LayerWeights& w, const CudaStageActivations& acts) {
  const int N = B_ * T_, QW = NH_local_ * HS_, KW = NKV_local_ * HS_;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const int32_t* doc = acts.has_doc ? acts.doc : nullptr;
  cuda::Matmul& mm = *matmul_;
  cuda::rmsnorm_forward(a.ln1, a.rstd1, inp, params + w.ln1, N, C_, eps, stream_);
  // q/k/v are column-parallel: ln1 enters every TP rank unchanged.
  mm.forward(a.q, a.ln1, params + w.q, N, C_, QW, stream_);
  mm.forward(a.k, a.ln1, params + w.k, N, C_, KW, stream_);
  mm.forward(a.v, a.ln1, params + w.v, N, C_, KW, stream_);
  cuda::rope_forward(a.q, acts.rope_cos, acts.rope_sin, N, NH_local_, HS_, stream_);
  cuda::rope_forward(a.k, acts.rope_cos, acts.rope_sin, N, NKV_local_, HS_, stream_);
  cuda::attention_forward(a.att, a.lse, a.q, a.k, a.v, doc, B_, T_, NH_local_, NKV_local_, HS_, stream_);
  row_parallel_forward(proj_, a.att, params + w.o, QW);
  // resid_mid = inp + o_proj(att), then ln2 = rmsnorm(resid_mid), in one kernel.
  cuda::residual_rmsnorm_forward(a.resid_mid, a.ln2, a.rstd2, inp, proj_, params + w.ln2, N, C_, eps, stream_);
  mm.forward(a.gate, a.ln2, params + w.gate, N, C_, F_local_, stream_);  // gate/up are column-parallel
  mm.forward(a.up, a.ln2, params + w.up, N, C_, F_local_, stream_);
  cuda::swiglu_forward(a.h, a.gate, a.up, N, F_local_, stream_);
  if (out == nullptr) return;  // a full-recompute re-run: backward needs nothing past h
  row_parallel_forward(proj_, a.h, params + w.down, F_local_);
  cuda::add_bf16(out, a.resid_mid, proj_, static_cast<size_t>(N) * C_, stream_);
}

void CudaLlamaStage::recompute_layer(size_t l, CudaStageActivations& acts, const bf16* params) {
  CudaLayerActivations& a = acts.layers[l];
  switch (recompute_) {
    case Recompute::None:
      return;
    case Recompute::Selective:
      cuda::attention_forward(a.att, a.lse, a.q, a.k, a.v, acts.has_doc ? acts.doc : nullptr, B_, T_, NH_local_,
                              NKV_local_, HS_, stream_);
      cuda::swiglu_forward(a.h, a.gate, a.up, B_ * T_, F_local_, stream_);
      return;
    case Recompute::Full:
      layer_forward(a, /*out=*/nullptr, acts.resid[l], params, offsets_.layers[l], acts);
      return;
  }
}

double CudaLlamaStage::forward(CudaStageActivations& acts, const bf16* params, const MicroBatch& batch,
                               const bf16* input) {
  const int N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C_;
  // Pageable host memory: cudaMemcpyAsync stages it before returning, so the batch may be freed after.
  auto upload = [&](auto* dst, const auto* src) {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, N * sizeof(*src), cudaMemcpyHostToDevice, stream_));
  };
  std::vector<int32_t> positions;
  if (batch.positions) {
    upload(acts.positions, batch.positions);
  } else {
    positions.resize(N);
    for (int i = 0; i < N; ++i) positions[i] = i % T_;
    upload(acts.positions, positions.data());
  }
  acts.has_doc = batch.doc != nullptr;
  if (acts.has_doc) upload(acts.doc, batch.doc);
  cuda::rope_tables(acts.rope_cos, acts.rope_sin, acts.positions, inv_freq_, N, HS_, stream_);

  if (topo_.is_first_stage()) {
    upload(acts.tokens, batch.tokens);
    cuda::embedding_forward(acts.resid[0], acts.tokens, params + offsets_.embed, N, C_, static_cast<int>(offsets_.vocab_start),
                            static_cast<int>(offsets_.V_local), stream_);
    tp_all_reduce(acts.resid[0], NC);  // vocab-parallel: rows outside a rank's shard are zero there
  } else {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(acts.resid[0], input, NC * sizeof(bf16), cudaMemcpyDeviceToDevice, stream_));
  }
  for (size_t l = 0; l < offsets_.layers.size(); ++l)
    layer_forward(acts.layers[l], acts.resid[l + 1], acts.resid[l], params, offsets_.layers[l], acts);
  if (!topo_.is_last_stage()) return 0.0;

  // Final norm, vocab-parallel LM head and cross-entropy; the full logits are never gathered.
  upload(acts.targets, batch.targets);
  upload(acts.loss_weight, batch.loss_weight);
  cuda::rmsnorm_forward(acts.lnf, acts.rstdf, acts.resid.back(), params + offsets_.norm, N, C_,
                        static_cast<float>(config_.rms_norm_eps), stream_);
  const int VL = static_cast<int>(offsets_.V_local), VV = static_cast<int>(offsets_.V_valid), vs = static_cast<int>(offsets_.vocab_start);
  matmul_->forward(acts.logits, acts.lnf, params + offsets_.head, N, C_, VL, stream_);
  cuda::xent_local_max(acts.xent_max, acts.logits, N, VL, VV, stream_);
  tp_all_reduce(acts.xent_max, N, ReduceOp::Max);
  cuda::xent_local_sumexp(acts.xent_sumexp, acts.xent_target, acts.logits, acts.xent_max, acts.targets, N, VL, VV,
                          vs, stream_);
  tp_all_reduce(acts.xent_sumexp, N, ReduceOp::Sum);
  tp_all_reduce(acts.xent_target, N, ReduceOp::Sum);
  cuda::xent_losses(acts.losses, acts.xent_max, acts.xent_sumexp, acts.xent_target, N, stream_);
  IRIS_CUDA_CHECK(cudaMemcpyAsync(acts.host_losses.data(), acts.losses, N * sizeof(float), cudaMemcpyDeviceToHost,
                                  stream_));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  double loss = 0.0;  // the CPU stage's sum, in the same order
  for (int i = 0; i < N; ++i) loss += static_cast<double>(batch.loss_weight[i]) * acts.host_losses[i];
  return loss;
}

template <typename GradT>
void CudaLlamaStage::layer_backward(CudaLayerActivations& a, const bf16* inp, const bf16* params, GradT* grads,
                                    const LayerWeights& w, const CudaStageActivations& acts) {
  const int N = B_ * T_, QW = NH_local_ * HS_, KW = NKV_local_ * HS_;
  const size_t NC = static_cast<size_t>(N) * C_;
  const int32_t* doc = acts.has_doc ? acts.doc : nullptr;
  cuda::Matmul& mm = *matmul_;
  // MLP block: out = resid_mid + down(silu(gate(ln2)) · up(ln2)); dresid_ holds d(out). down_proj is
  // row-parallel: d(out) reaches every TP rank as it is.
  mm.backward(dh_, grads + w.down, dresid_, a.h, params + w.down, N, F_local_, C_, false, stream_);
  cuda::swiglu_backward(dgate_, dup_, dh_, a.gate, a.up, N, F_local_, stream_);
  mm.backward(dln_, grads + w.gate, dgate_, a.ln2, params + w.gate, N, C_, F_local_, false, stream_);
  mm.backward(dln_, grads + w.up, dup_, a.ln2, params + w.up, N, C_, F_local_, /*accumulate_dinp=*/true, stream_);
  tp_all_reduce(dln_, NC);  // gate/up are column-parallel: sum the partial input gradients
  // The residual passes d(out) through; the norm's input gradient adds to it: dresid_ = d(resid_mid).
  cuda::rmsnorm_backward(dresid_, grads + w.ln2, dln_, a.resid_mid, params + w.ln2, a.rstd2, N, C_,
                         /*accumulate_dinp=*/true, stream_);

  // Attention block: resid_mid = inp + o_proj(attention(rope(q), rope(k), v)).
  mm.backward(datt_, grads + w.o, dresid_, a.att, params + w.o, N, QW, C_, false, stream_);
  cuda::attention_backward(dq_, dk_, dv_, datt_, a.q, a.k, a.v, a.att, a.lse, delta_, doc, B_, T_, NH_local_,
                           NKV_local_, HS_, stream_);
  cuda::rope_backward(dq_, acts.rope_cos, acts.rope_sin, N, NH_local_, HS_, stream_);
  cuda::rope_backward(dk_, acts.rope_cos, acts.rope_sin, N, NKV_local_, HS_, stream_);
  mm.backward(dln_, grads + w.q, dq_, a.ln1, params + w.q, N, C_, QW, false, stream_);
  mm.backward(dln_, grads + w.k, dk_, a.ln1, params + w.k, N, C_, KW, true, stream_);
  mm.backward(dln_, grads + w.v, dv_, a.ln1, params + w.v, N, C_, KW, true, stream_);
  tp_all_reduce(dln_, NC);  // q/k/v are column-parallel
  cuda::rmsnorm_backward(dresid_, grads + w.ln1, dln_, inp, params + w.ln1, a.rstd1, N, C_, true, stream_);
  // dresid_ is now d(inp)
}

void CudaLlamaStage::embedding_backward(float* grads, const CudaStageActivations& acts) {
  cuda::embedding_backward(grads + offsets_.embed, dresid_, acts.tokens, B_ * T_, C_,
                           static_cast<int>(offsets_.vocab_start), static_cast<int>(offsets_.V_local), stream_);
}

void CudaLlamaStage::embedding_backward(bf16* grads, const CudaStageActivations& acts) {
  cuda::embedding_backward(grads + offsets_.embed, dresid_, acts.tokens, B_ * T_, C_,
                           static_cast<int>(offsets_.vocab_start), static_cast<int>(offsets_.V_local),
                           embed_workspace_, embed_workspace_bytes_, stream_);
}

void CudaLlamaStage::backward(CudaStageActivations& acts, const bf16* params, void* grads, const MicroBatch& batch,
                              const bf16* dout, bf16* dinput, const GradsReady& ready) {
  (void)batch;  // forward's device copies of it live in acts
  if (grad_dtype_ == DType::BF16)
    backward_into(acts, params, static_cast<bf16*>(grads), dout, dinput, ready);
  else
    backward_into(acts, params, static_cast<float*>(grads), dout, dinput, ready);
}

template <typename GradT>
void CudaLlamaStage::backward_into(CudaStageActivations& acts, const bf16* params, GradT* grads, const bf16* dout,
                                   bf16* dinput, const GradsReady& ready) {
  const int N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C_;
  if (topo_.is_last_stage()) {
    const int VL = static_cast<int>(offsets_.V_local), VV = static_cast<int>(offsets_.V_valid), vs = static_cast<int>(offsets_.vocab_start);
    bf16* dlogits = acts.logits;  // in place
    cuda::xent_backward(dlogits, acts.logits, acts.xent_max, acts.xent_sumexp, acts.targets, acts.loss_weight, N, VL,
                        VV, vs, stream_);
    matmul_->backward(dln_, grads + offsets_.head, dlogits, acts.lnf, params + offsets_.head, N, C_, VL, false,
                      stream_);
    tp_all_reduce(dln_, NC);  // the LM head is vocab (column) parallel
    cuda::rmsnorm_backward(dresid_, grads + offsets_.norm, dln_, acts.resid.back(), params + offsets_.norm, acts.rstdf,
                           N, C_, /*accumulate_dinp=*/false, stream_);
    if (ready) ready(offsets_.norm);
  } else {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(dresid_, dout, NC * sizeof(bf16), cudaMemcpyDeviceToDevice, stream_));
  }
  for (size_t l = offsets_.layers.size(); l-- > 0;) {
    recompute_layer(l, acts, params);
    layer_backward(acts.layers[l], acts.resid[l], params, grads, offsets_.layers[l], acts);
    if (ready) ready(offsets_.layers[l].ln1);
  }
  if (topo_.is_first_stage()) {
    embedding_backward(grads, acts);
  } else {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(dinput, dresid_, NC * sizeof(bf16), cudaMemcpyDeviceToDevice, stream_));
  }
}

}  // namespace iris
