// Forward and backward of one pipeline stage of a Llama model on one GPU: the math of LlamaStage
// (src/model/llama.h, the fp32 reference) in mixed precision. Weights are a bf16 copy of the flat fp32
// master buffer, laid out by the same ParamTable (AdamW's bf16 output refreshes it); activations bf16;
// every kernel accumulates in fp32; parameter gradients ACCUMULATED (+=) into the flat gradient buffer at
// the ParamTable's offsets, fp32 or bf16 (train.grad_dtype, fixed at construction: each kernel sums its
// contribution in fp32 and rounds once when it adds it to a bf16 gradient); activation gradients WRITTEN
// (=); the loss fp32 (summed in double).
// Tensor parallelism is LlamaStage's Megatron TP (column-parallel q/k/v and gate/up, row-parallel o_proj and
// down_proj, vocab-parallel embedding and cross-entropy) with the all-reduces on device buffers through a
// DeviceComm (NcclComm or StagedComm) ordered after the stage's stream. The Comm interface is fp32, and the
// stage stages through fp32 rather than adding a bf16 all-reduce: the row-parallel partial products leave
// the GEMM in fp32 (cuBLASLt's fp32 output), are summed in fp32 and rounded to bf16 once, exactly like the
// tp = 1 product, instead of being rounded per rank and again per reduction step; the bf16 input gradients
// and the embedding are widened to fp32 (exact) for their all-reduce. The price is twice the bytes of a
// bf16 all-reduce and two cast kernels per all-reduce: iris-plan's model puts it at ~3 % of a 7B step at
// tp = 2 on A100 NVLink (21.80 s instead of 21.14 s, 64 GPUs, seq 4096; docs/planning.md). A bf16 all-reduce on DeviceComm is the optimisation to make if
// measured profiles agree (NCCL has ncclBfloat16; StagedComm would convert on the host).
// Recomputation (Recompute, src/model/llama.h) as in LlamaStage: the dropped buffers of every layer point at
// one set in the stage's scratch, refilled for layer l just before layer_backward(l).
// A host C++ header (it includes llama.h, hence fmt, so .cu files cannot include it); the stage only
// queues the launchers of src/kernels/cuda. Built only when IRIS_WITH_CUDA (library iris_model_cuda).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "src/core/dtype.h"
#include "src/kernels/cuda/matmul.cuh"
#include "src/model/cuda/device_arena.h"
#include "src/model/llama.h"

namespace iris {

using bf16 = __nv_bfloat16;

// One layer's saved activations on the device: bf16 activations, fp32 statistics (src/model/llama.h).
using CudaLayerActivations = LayerActivationsOf<bf16, float>;

// Everything one micro-batch keeps on the device between its forward and its backward on this stage,
// carved from one allocation.
//
// Recomputation fits this layout without changing the layer code: the buffers a mode drops are not carved
// per layer; instead they point, for every layer, at one shared set in the stage's scratch (shared by the
// micro-batches too: 1F1B keeps up to pp activation sets alive, but kernels run one at a time on the
// stream and backward refills the set for layer l just before layer_backward(l) runs).
//   selective: att, lse and h shared; refilled by attention_forward(q, k, v) and swiglu_forward(gate, up).
//   full:      every CudaLayerActivations buffer shared; only resid[l] kept per layer; refilled by
//              layer_forward(l) from resid[l], stopped after h (down_proj only makes the layer output).
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
  // Same arguments as LlamaStage, plus the stream every kernel is queued on. tp: nullptr or of size 1 when
  // topo.tp == 1; otherwise a DeviceComm of size topo.tp (make_device_communicators) whose compute stream
  // is `stream` (set_compute_stream) by the time forward/backward run. grad_dtype: F32 or BF16, the element
  // type of the gradient buffer backward accumulates into.
  CudaLlamaStage(const LlamaConfig& config, const Topology& topo, const ParamTable& table, StageLayers layers, int B,
                 int T, Comm* tp, cudaStream_t stream = nullptr, Recompute recompute = Recompute::None,
                 DType grad_dtype = DType::F32);
  ~CudaLlamaStage();
  CudaLlamaStage(const CudaLlamaStage&) = delete;
  CudaLlamaStage& operator=(const CudaLlamaStage&) = delete;

  std::unique_ptr<CudaStageActivations> make_activations() const;

  // params (total_numel,) device bf16, the ParamTable's flat layout. batch: HOST arrays (as the data
  // loader makes them), copied to the device here. input (N, C) device bf16: the previous stage's output
  // (ignored on the first stage, which embeds batch.tokens). Returns Σ loss_weight·loss over the
  // micro-batch on the last stage (waits for the stream), 0 elsewhere (does not wait).
  double forward(CudaStageActivations& acts, const bf16* params, const MicroBatch& batch, const bf16* input);
  // grads (total_numel,) device, fp32 or bf16 as grad_dtype(), +=. dout (N, C) device bf16: gradient of
  // this stage's output (ignored on the last stage, which starts from the loss). dinput (N, C) device bf16 receives the
  // gradient of the stage input (not on the first stage). The micro-batch is the one given to forward;
  // its device copies in acts are what backward reads. Queued on the stream; does not wait. ready: as
  // LlamaStage::backward's, called once the work it reports is queued.
  void backward(CudaStageActivations& acts, const bf16* params, void* grads, const MicroBatch& batch,
                const bf16* dout, bf16* dinput, const GradsReady& ready = nullptr);

  const bf16* output(const CudaStageActivations& acts) const { return acts.resid.back(); }
  cudaStream_t stream() const { return stream_; }
  int rows() const { return B_ * T_; }
  int hidden() const { return C_; }
  int64_t vocab_local() const { return offsets_.V_local; }
  int64_t vocab_start() const { return offsets_.vocab_start; }
  Recompute recompute() const { return recompute_; }
  DType grad_dtype() const { return grad_dtype_; }
  // Bytes of the stage's own device buffers: backward scratch, TP staging, the recompute set and the bf16
  // embedding backward's sort workspace.
  size_t scratch_bytes() const { return scratch_.capacity_bytes(); }

 private:
  using LayerWeights = StageOffsets::Layer;

  void carve(CudaStageActivations& acts) const;
  // out == nullptr: stop after h (the full-recompute re-run).
  void layer_forward(CudaLayerActivations& a, bf16* out, const bf16* inp, const bf16* params, const LayerWeights& w,
                     const CudaStageActivations& acts);
  // Refills what recompute_ dropped from layer l's activations, just before its backward.
  void recompute_layer(size_t l, CudaStageActivations& acts, const bf16* params);
  // out (N, C) = inp (N, IC) · weight_localᵀ summed over the TP group (row-parallel: o_proj, down_proj).
  void row_parallel_forward(bf16* out, const bf16* inp, const bf16* weight, int IC);
  // In-place TP all-reduces (no-ops at tp = 1): fp32 directly; bf16 through tp_staging_ (see above).
  void tp_all_reduce(float* data, size_t count, ReduceOp op);
  void tp_all_reduce(bf16* data, size_t count);
  bool tp_active() const { return tp_ != nullptr && tp_->size() > 1; }
  // GradT: float or bf16, the gradient buffer's element type (grad_dtype_).
  template <typename GradT>
  void backward_into(CudaStageActivations& acts, const bf16* params, GradT* grads, const bf16* dout, bf16* dinput,
                     const GradsReady& ready);
  template <typename GradT>
  void layer_backward(CudaLayerActivations& a, const bf16* inp, const bf16* params, GradT* grads,
                      const LayerWeights& w, const CudaStageActivations& acts);
  // dwte += the first stage's embedding gradient (fp32: token-order adds; bf16: through embed_workspace_).
  void embedding_backward(float* grads, const CudaStageActivations& acts);
  void embedding_backward(bf16* grads, const CudaStageActivations& acts);

  LlamaConfig config_;
  Topology topo_;
  Comm* tp_;
  cudaStream_t stream_;
  Recompute recompute_;
  DType grad_dtype_;
  int B_, T_, C_, HS_, NH_local_, NKV_local_, F_local_;
  StageOffsets offsets_;  // where this stage's tensors are in the flat buffers (ParamTable)
  std::unique_ptr<cuda::Matmul> matmul_;  // one per stream: handle, workspace, plan cache
  // Stage scratch, shared by all micro-batches (kernels run one at a time on the stream).
  DeviceArena scratch_;
  float* inv_freq_ = nullptr;  // (HS/2,) RoPE inverse frequencies, scaling applied
  bf16* proj_ = nullptr;       // (N, C)   o_proj / down_proj output before the residual add
  bf16* dresid_ = nullptr;     // (N, C)   the residual stream's gradient, running backwards in place
  bf16 *dln_ = nullptr, *dq_ = nullptr, *datt_ = nullptr, *dk_ = nullptr, *dv_ = nullptr;
  float* delta_ = nullptr;     // (B, NH_local, T) the attention backward's row statistics
  bf16 *dgate_ = nullptr, *dup_ = nullptr, *dh_ = nullptr;
  float* tp_staging_ = nullptr;  // (N, C) fp32: the TP all-reduces of bf16 activations (tp > 1 only)
  void* embed_workspace_ = nullptr;  // the bf16-gradient embedding backward's sort (first stage, bf16 only)
  size_t embed_workspace_bytes_ = 0;
  CudaLayerActivations shared_{};  // the recompute set: the buffers recompute_ drops, for every layer
};

}  // namespace iris
