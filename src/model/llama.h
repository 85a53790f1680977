// Forward and backward of one pipeline stage of a Llama model on one tensor-parallel rank, CPU fp32.
// No autograd (decision 1): each layer has explicit forward/backward with the named activations of
// StageActivations saved in between. Parameter gradients accumulate (+=) into the flat gradient
// buffer so micro-batches add up; activation gradients are written.
// Tensor parallelism follows Megatron-LM: q/k/v and gate/up are column-parallel (identity forward,
// all-reduce of the input gradient backward), o_proj and down_proj row-parallel (all-reduce of the
// output forward, identity backward), embedding and LM head vocab-parallel.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "parallel/comm.h"
#include "src/core/arena.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"

namespace iris {

// One micro-batch as a stage sees it. All arrays (B, T).
struct MicroBatch {
  const int32_t* tokens = nullptr;       // inputs (first stage)
  const int32_t* targets = nullptr;      // next tokens (last stage)
  const float* loss_weight = nullptr;    // per-token weight of the loss: mask / trained tokens of the global batch
  const int32_t* positions = nullptr;    // RoPE positions; nullptr = 0..T-1 in every row
  const int32_t* doc = nullptr;          // document ids for packed sequences; nullptr = one document per row
};

struct LayerActivations {
  float* ln1;        // (N, C)       input_layernorm output
  float* rstd1;      // (N,)
  float* q;          // (N, NH_local·HS)  after RoPE
  float* k;          // (N, NKV_local·HS) after RoPE
  float* v;          // (N, NKV_local·HS)
  float* att;        // (N, NH_local·HS)  attention output before o_proj
  float* lse;        // (B, NH_local, T)
  float* resid_mid;  // (N, C)       residual after the attention block
  float* ln2;        // (N, C)
  float* rstd2;      // (N,)
  float* gate;       // (N, F_local)
  float* up;         // (N, F_local)
  float* h;          // (N, F_local)  silu(gate)·up
};

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
             int T, Comm* tp);

  std::unique_ptr<StageActivations> make_activations() const;

  // input (N, C): activations from the previous stage (ignored on the first stage, which embeds
  // batch.tokens). Returns Σ loss_weight·loss over the micro-batch on the last stage, 0 elsewhere.
  double forward(StageActivations& acts, const float* params, const MicroBatch& batch, const float* input) const;
  // dout (N, C): gradient of this stage's output (ignored on the last stage, which starts from the
  // loss). dinput (N, C) receives the gradient of the stage input (not on the first stage).
  void backward(StageActivations& acts, const float* params, float* grads, const MicroBatch& batch,
                const float* dout, float* dinput) const;

  const float* output(const StageActivations& acts) const { return acts.resid.back(); }
  int rows() const { return B_ * T_; }
  int hidden() const { return C_; }
  int64_t vocab_local() const { return offsets_.V_local; }
  int64_t vocab_start() const { return offsets_.vocab_start; }
  int64_t vocab_valid_local() const { return offsets_.V_valid; }

 private:
  using LayerWeights = StageOffsets::Layer;

  void layer_forward(LayerActivations& a, float* out, const float* inp, const float* params, const LayerWeights& w,
                     const StageActivations& acts, const MicroBatch& batch) const;
  void layer_backward(LayerActivations& a, float* dresid, const float* inp, const float* params, float* grads,
                      const LayerWeights& w, const StageActivations& acts, const MicroBatch& batch) const;
  void tp_all_reduce(float* data, size_t count, ReduceOp op) const;

  LlamaConfig config_;
  Topology topo_;
  StageLayers stage_layers_;
  Comm* tp_;
  int B_, T_, C_, HS_, NH_local_, NKV_local_, F_local_;
  StageOffsets offsets_;  // where this stage's tensors are in the flat buffers (ParamTable)
  std::vector<float> inv_freq_;
  // Backward scratch, shared by all micro-batches (one backward runs at a time).
  std::unique_ptr<Arena> scratch_;
  float *dln_, *dtmp_, *dq_, *dk_, *dv_, *datt_, *dgate_, *dup_, *dh_;
  mutable std::vector<float> dresid_buffer_;  // (N, C)
};

}  // namespace iris
