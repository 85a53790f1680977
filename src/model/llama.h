// Forward and backward of one pipeline stage of a Llama model on one tensor-parallel rank, CPU fp32.
// No autograd (docs/design.md decision 1): each layer has explicit forward/backward with the named activations of
// StageActivations saved in between. Parameter gradients accumulate (+=) into the flat gradient
// buffer so micro-batches add up; activation gradients are written.
// Tensor parallelism follows Megatron-LM: q/k/v and gate/up are column-parallel (identity forward,
// all-reduce of the input gradient backward), o_proj and down_proj row-parallel (all-reduce of the
// output forward, identity backward), embedding and LM head vocab-parallel.
// Activation recomputation (Recompute) changes what a micro-batch keeps, never the arithmetic: every
// mode gives bit-identical losses and gradients.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "src/core/arena.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"

namespace iris {

// Activation recomputation (--train.recompute; Korthikanti et al. 2022, "Reducing Activation Recomputation
// in Large Transformer Models", sec. 4), i.e. which LayerActivations a layer keeps per micro-batch:
//   None       all of them.
//   Selective  all but the attention core's output and statistics (att, lse) and the SwiGLU product h;
//              backward refills them with attention_forward(q, k, v) and swiglu_forward(gate, up).
//   Full       none: only resid[l], the layer's input, is kept; backward re-runs the layer's forward from
//              it up to h (the down projection and its all-reduce feed only the layer output, which
//              backward does not read, so they are not re-run).
// The dropped buffers are one set owned by the stage and shared by every layer and micro-batch (one
// backward runs at a time; a forward that overwrites them in between is harmless, since backward refills
// them right before use). Recomputing runs the same kernels on the same inputs, so it is exact; on tp > 1
// the re-run forward repeats its TP all-reduce (after o_proj) on every TP rank alike.
enum class Recompute { None, Selective, Full };
// "none" | "selective" | "full"; otherwise UserError "<key> must be none, selective or full".
Recompute parse_recompute(const std::string& text, const std::string& key = "train.recompute");
const char* to_string(Recompute recompute);

// One micro-batch as a stage sees it. All arrays (B, T).
struct MicroBatch {
  const int32_t* tokens = nullptr;       // inputs (first stage)
  const int32_t* targets = nullptr;      // next tokens (last stage)
  const float* loss_weight = nullptr;    // per-token weight of the loss: mask / trained tokens of the global batch
  const int32_t* positions = nullptr;    // RoPE positions; nullptr = 0..T-1 in every row
  const int32_t* doc = nullptr;          // document ids for packed sequences; nullptr = one document per row
};

// One layer's saved activations. N = B·T rows. One shape for both stages: the CPU stage keeps every
// buffer in fp32 (LayerActivations), the CUDA stage its activations in bf16 and the statistics (rstd,
// lse) in fp32 (CudaLayerActivations, src/model/cuda/llama_stage.h).
template <class Act, class Stat>
struct LayerActivationsOf {
  Act* ln1;        // (N, C)       input_layernorm output
  Stat* rstd1;     // (N,)
  Act* q;          // (N, NH_local·HS)  after RoPE
  Act* k;          // (N, NKV_local·HS) after RoPE
  Act* v;          // (N, NKV_local·HS)
  Act* att;        // (N, NH_local·HS)  attention output before o_proj
  Stat* lse;       // (B, NH_local, T)
  Act* resid_mid;  // (N, C)       residual after the attention block
  Act* ln2;        // (N, C)
  Stat* rstd2;     // (N,)
  Act* gate;       // (N, F_local)
  Act* up;         // (N, F_local)
  Act* h;          // (N, F_local)  silu(gate)·up
};
using LayerActivations = LayerActivationsOf<float, float>;
// Which LayerActivations buffers a mode shares between layers (the stage's recompute set) instead of
// keeping one per layer. ln1 … h in declaration order.
struct RecomputedBuffers {
  bool ln1 = false, rstd1 = false, q = false, k = false, v = false, att = false, lse = false, resid_mid = false,
       ln2 = false, rstd2 = false, gate = false, up = false, h = false;
  static RecomputedBuffers of(Recompute mode);
};

// Hands out the buffers of one layer's activations (LayerActivations here, CudaLayerActivations on the
// GPU): those `dropped` marks when shared_set (the stage's
// recompute set), the others otherwise (a micro-batch's layer), by take(buffer, elements); leaves the
// rest of `a` as it is. q_width, kv_width: this rank's query and KV heads × head size; lse: B·heads·T.
template <class LayerActs, class Take>
void carve_layer(LayerActs& a, const RecomputedBuffers& dropped, bool shared_set, Take&& take, size_t N, size_t C,
                 size_t q_width, size_t kv_width, size_t lse, size_t F) {
  auto one = [&](auto*& buffer, bool is_dropped, size_t n) {
    if (is_dropped == shared_set) take(buffer, n);
  };
  one(a.ln1, dropped.ln1, N * C);
  one(a.rstd1, dropped.rstd1, N);
  one(a.q, dropped.q, N * q_width);
  one(a.k, dropped.k, N * kv_width);
  one(a.v, dropped.v, N * kv_width);
  one(a.att, dropped.att, N * q_width);
  one(a.lse, dropped.lse, lse);
  one(a.resid_mid, dropped.resid_mid, N * C);
  one(a.ln2, dropped.ln2, N * C);
  one(a.rstd2, dropped.rstd2, N);
  one(a.gate, dropped.gate, N * F);
  one(a.up, dropped.up, N * F);
  one(a.h, dropped.h, N * F);
}

// Told by a stage's backward, with a flat offset into the gradient buffer, that gradients from there to
// the end of the buffer are final for this backward: after the LM head and final norm (offset of the
// norm), then after each layer l (offset of its first tensor), in decreasing order. The embedding, first
// in the flat layout, is never reported (its backward is the last thing the first stage does). A
// device stage calls it once the layer's work is queued on its stream (not done): what the caller
// issues must be ordered after that stream. The overlapped ZeRO-1 reduction (src/train/grad_reduce.h)
// listens to it during a step's last micro-batch.
using GradsReady = std::function<void(size_t offset)>;

// Everything one micro-batch saves between its forward and its backward on this stage.
struct StageActivations {
  explicit StageActivations(size_t floats) : arena(floats) {}
  Arena arena;                        // every buffer below is carved from it
  std::vector<float*> resid;          // resid[i] (N, C): input of local layer i; resid[n_layers] = stage output
  std::vector<LayerActivations> layers;
  float* rope_cos;                    // (N, HS/2)
  float* rope_sin;                    // (N, HS/2)
  std::vector<int32_t> positions;     // (N,)
  // Last stage only:
  float* lnf = nullptr;               // (N, C)
  float* rstdf = nullptr;             // (N,)
  float* logits = nullptr;            // (N, V_local); overwritten by dlogits in backward
  float* losses = nullptr;            // (N,) per-token cross-entropy
  float* xent_max = nullptr;          // (N,)
  float* xent_sumexp = nullptr;       // (N,)
  float* xent_target = nullptr;       // (N,)
};

class LlamaStage {
 public:
  // tp may be null (tp = 1). B, T: micro-batch shape.
  LlamaStage(const LlamaConfig& config, const Topology& topo, const ParamTable& table, StageLayers layers, int B,
             int T, Comm* tp, Recompute recompute = Recompute::None);

  std::unique_ptr<StageActivations> make_activations() const;

  // input (N, C): activations from the previous stage (ignored on the first stage, which embeds
  // batch.tokens). Returns Σ loss_weight·loss over the micro-batch on the last stage, 0 elsewhere.
  double forward(StageActivations& acts, const float* params, const MicroBatch& batch, const float* input) const;
  // dout (N, C): gradient of this stage's output (ignored on the last stage, which starts from the
  // loss). dinput (N, C) receives the gradient of the stage input (not on the first stage).
  // ready (optional) is told the stage's progress: grads[offset, end) will not change any more in this
  // backward (after the LM head and final norm, then after each layer; see GradsReady).
  void backward(StageActivations& acts, const float* params, float* grads, const MicroBatch& batch,
                const float* dout, float* dinput, const GradsReady& ready = nullptr) const;

  const float* output(const StageActivations& acts) const { return acts.resid.back(); }
  int rows() const { return B_ * T_; }
  int hidden() const { return C_; }
  int64_t vocab_local() const { return offsets_.V_local; }
  int64_t vocab_start() const { return offsets_.vocab_start; }
  int64_t vocab_valid_local() const { return offsets_.V_valid; }
  Recompute recompute() const { return recompute_; }
  // Floats of the stage's own buffers: backward scratch and the recompute set (not per micro-batch).
  size_t scratch_floats() const { return scratch_->capacity(); }

 private:
  using LayerWeights = StageOffsets::Layer;

  // out == nullptr: stop after h (the full-recompute re-run; see Recompute).
  void layer_forward(LayerActivations& a, float* out, const float* inp, const float* params, const LayerWeights& w,
                     const StageActivations& acts, const MicroBatch& batch) const;
  // Refills what recompute_ dropped from layer l's activations, just before its backward.
  void recompute_layer(size_t l, StageActivations& acts, const float* params, const MicroBatch& batch) const;
  void layer_backward(LayerActivations& a, float* dresid, const float* inp, const float* params, float* grads,
                      const LayerWeights& w, const StageActivations& acts, const MicroBatch& batch) const;
  void tp_all_reduce(float* data, size_t count, ReduceOp op) const;

  LlamaConfig config_;
  Topology topo_;
  StageLayers stage_layers_;
  Comm* tp_;
  Recompute recompute_;
  int B_, T_, C_, HS_, NH_local_, NKV_local_, F_local_;
  StageOffsets offsets_;  // where this stage's tensors are in the flat buffers (ParamTable)
  std::vector<float> inv_freq_;
  // Backward scratch, shared by all micro-batches (one backward runs at a time).
  std::unique_ptr<Arena> scratch_;
  float *dln_, *dtmp_, *dq_, *dk_, *dv_, *datt_, *dgate_, *dup_, *dh_;
  LayerActivations shared_{};  // the recompute set: the buffers recompute_ drops, for every layer
  mutable std::vector<float> dresid_buffer_;  // (N, C)
};

}  // namespace iris
