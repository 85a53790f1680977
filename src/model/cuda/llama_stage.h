// Forward and backward of one pipeline stage of a Llama model on one GPU: the math of LlamaStage
// (src/model/llama.h, the fp32 reference) in mixed precision. Weights are a bf16 copy of the flat fp32
// master buffer, laid out by the same ParamTable (AdamW's bf16 output refreshes it); activations bf16;
// every kernel accumulates in fp32; parameter gradients fp32 and ACCUMULATED (+=) into the flat gradient
// buffer at the ParamTable's offsets; activation gradients WRITTEN (=); the loss fp32 (summed in double).
// Tensor parallelism is not done on device buffers yet: the stage requires tp = 1 (see the constructor).
// A host C++ header (it includes llama.h, hence fmt, so .cu files cannot include it); the stage only
// queues the launchers of src/kernels/cuda. Built only when IRIS_WITH_CUDA (library iris_model_cuda).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "src/kernels/cuda/matmul.cuh"
#include "src/model/cuda/device_arena.h"
#include "src/model/llama.h"

namespace iris {

using bf16 = __nv_bfloat16;

// One layer's saved activations, the bf16 counterpart of LayerActivations. N = B·T rows.
struct CudaLayerActivations {
  bf16* ln1;        // (N, C)       input_layernorm output
  float* rstd1;     // (N,)
  bf16* q;          // (N, NH·HS)   after RoPE
  bf16* k;          // (N, NKV·HS)  after RoPE
  bf16* v;          // (N, NKV·HS)
  bf16* att;        // (N, NH·HS)   attention output before o_proj
  float* lse;       // (B, NH, T)
  bf16* resid_mid;  // (N, C)       residual after the attention block
  bf16* ln2;        // (N, C)
  float* rstd2;     // (N,)
  bf16* gate;       // (N, F)
  bf16* up;         // (N, F)
  bf16* h;          // (N, F)       silu(gate)·up
};

// Everything one micro-batch keeps on the device between its forward and its backward on this stage,
// carved from one allocation.
//
// Recomputation (--train.recompute, a later step) fits this layout without changing the layer code:
// the buffers a mode drops stop being carved per layer and instead point, for every layer, at one shared
// set carved once; backward then refills that set for layer l just before layer_backward(l) runs.
//   selective: att, lse and h shared; refilled by attention_forward(q, k, v) and swiglu_forward(gate, up).
//   full:      every CudaLayerActivations buffer shared; only resid[l] kept per layer; refilled by
//              layer_forward(l) from resid[l] (its output is written to a scratch, not resid[l + 1]).
// The rope tables and the micro-batch copies are kept in every mode (they are small).
struct CudaStageActivations {
  DeviceArena arena;                        // every device buffer below is carved from it
  std::vector<bf16*> resid;                 // resid[i] (N, C): input of local layer i; resid[L] = stage output
  std::vector<CudaLayerActivations> layers;
  float* rope_cos = nullptr;                // (N, HS/2)
  float* rope_sin = nullptr;                // (N, HS/2)
  // Device copies of the micro-batch, made by forward and read again by backward. (N,) each.
  int32_t* tokens = nullptr;
  int32_t* targets = nullptr;
  float* loss_weight = nullptr;             // the per-token dloss of the cross-entropy backward
  int32_t* positions = nullptr;
  int32_t* doc = nullptr;
  bool has_doc = false;                     // the micro-batch had document ids (packed sequences)
  // Last stage only:
  bf16* lnf = nullptr;                      // (N, C)
  float* rstdf = nullptr;                   // (N,)
  bf16* logits = nullptr;                   // (N, V_local); overwritten by dlogits in backward
  float* losses = nullptr;                  // (N,) per-token cross-entropy
  float* xent_max = nullptr;                // (N,)
  float* xent_sumexp = nullptr;             // (N,)
  float* xent_target = nullptr;             // (N,)
  std::vector<float> host_losses;           // (N,) losses read back for the weighted sum
};

class CudaLlamaStage {
 public:
  // Same arguments as LlamaStage, plus the stream every kernel is queued on. tp must be nullptr or of
  // size 1 and topo.tp == 1: the TP all-reduces need a communicator over device buffers (NcclComm).
  CudaLlamaStage(const LlamaConfig& config, const Topology& topo, const ParamTable& table, StageLayers layers, int B,
                 int T, Comm* tp, cudaStream_t stream = nullptr);
  ~CudaLlamaStage();
  CudaLlamaStage(const CudaLlamaStage&) = delete;
  CudaLlamaStage& operator=(const CudaLlamaStage&) = delete;

  std::unique_ptr<CudaStageActivations> make_activations() const;

  // params (total_numel,) device bf16, the ParamTable's flat layout. batch: HOST arrays (as the data
  // loader makes them), copied to the device here. input (N, C) device bf16: the previous stage's output
  // (ignored on the first stage, which embeds batch.tokens). Returns Σ loss_weight·loss over the
  // micro-batch on the last stage (waits for the stream), 0 elsewhere (does not wait).
  double forward(CudaStageActivations& acts, const bf16* params, const MicroBatch& batch, const bf16* input);
  // grads (total_numel,) device fp32, +=. dout (N, C) device bf16: gradient of this stage's output
  // (ignored on the last stage, which starts from the loss). dinput (N, C) device bf16 receives the
  // gradient of the stage input (not on the first stage). The micro-batch is the one given to forward;
  // its device copies in acts are what backward reads. Queued on the stream; does not wait.
  void backward(CudaStageActivations& acts, const bf16* params, float* grads, const MicroBatch& batch,
                const bf16* dout, bf16* dinput);

  const bf16* output(const CudaStageActivations& acts) const { return acts.resid.back(); }
  cudaStream_t stream() const { return stream_; }
  int rows() const { return B_ * T_; }
  int hidden() const { return C_; }
  int64_t vocab_local() const { return offsets_.V_local; }

 private:
  using LayerWeights = StageOffsets::Layer;

  void carve(CudaStageActivations& acts) const;
  void layer_forward(CudaLayerActivations& a, bf16* out, const bf16* inp, const bf16* params, const LayerWeights& w,
                     const CudaStageActivations& acts);
  void layer_backward(CudaLayerActivations& a, const bf16* inp, const bf16* params, float* grads,
                      const LayerWeights& w, const CudaStageActivations& acts);

  LlamaConfig config_;
  Topology topo_;
  cudaStream_t stream_;
  int B_, T_, C_, HS_, NH_, NKV_, F_;
  StageOffsets offsets_;  // where this stage's tensors are in the flat buffers (ParamTable)
  std::unique_ptr<cuda::Matmul> matmul_;  // one per stream: handle, workspace, plan cache
  // Stage scratch, shared by all micro-batches (kernels run one at a time on the stream).
  DeviceArena scratch_;
  float* inv_freq_ = nullptr;  // (HS/2,) RoPE inverse frequencies, scaling applied
  bf16* proj_ = nullptr;       // (N, C)   o_proj / down_proj output before the residual add
  bf16* dresid_ = nullptr;     // (N, C)   the residual stream's gradient, running backwards in place
  bf16 *dln_ = nullptr, *dq_ = nullptr, *datt_ = nullptr, *dk_ = nullptr, *dv_ = nullptr;
  bf16 *dgate_ = nullptr, *dup_ = nullptr, *dh_ = nullptr;
};

}  // namespace iris
