// Runs one optimizer step's pipeline schedule (parallel/pipeline_schedule: a list of actions per
// stage) on this stage: forward and backward of each micro-batch, and the point-to-point transfers
// of activations (N, C) to the next stage and of their gradients back. With pp = 1 the schedule is
// forward/backward per micro-batch and no transfer happens.
// One loop for both backends: the executor is a template over the stage (LlamaStage, host fp32;
// CudaLlamaStage, device bf16), whose StageTraits name its activations, element type and transfer
// buffer. Transfers go through Comm, which counts floats: an (N, C) activation of a 2-byte element type
// travels as ceil(N·C/2) floats of raw bytes (no conversion; MPI and NCCL copy floats bit for bit), so a
// bf16 activation needs no bytes path in Comm. Buffers are allocated with the rounded-up length.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "parallel/comm.h"
#include "parallel/pipeline_schedule.h"
#include "src/model/llama.h"

namespace iris {

// What run() and forward_only() did: the Σ of the stage's forward results, and whether the ranks
// agreed to stop before the last micro-batch (then the gradients are partial and must be dropped).
struct PipelineRun {
  double loss = 0;
  bool stopped = false;
  int micro_batches_done = 0;  // whose backward (run) or forward (forward_only) completed here
};

// Asked at the agreement points between micro-batches (pipeline_schedule.h: with_agreement_points): a
// collective over every rank that must give the same answer everywhere, split in two so it does not
// stall the pipeline. A blocking one at every point would make each stage wait there for the first
// stage's backward of the same micro-batch, serialising 1F1B. So each point only starts an agreement,
// and the one started pp − 1 points earlier is finished there (every rank finishes the same agreements
// at the same points, so all decide alike; at pp = 1 each is finished where it starts). A run stops at
// the point whose finished agreement says so; the rest are finished before run() returns (their answer
// then stands for the step boundary). Empty: never stop.
struct StopAgreement {
  std::function<void()> start;          // begins one agreement (non-blocking)
  std::function<bool()> finish_oldest;  // completes the oldest begun; true: the ranks agreed to stop
  explicit operator bool() const { return static_cast<bool>(start); }
};

// What the executor needs to know of a stage type besides its methods (forward, backward, output,
// make_activations, rows, hidden). The CUDA stage's traits live in src/train/cuda/cuda_stage_traits.h.
// Grad: what the stage's backward takes as its flat gradient buffer, passed through untouched.
template <class Stage>
struct StageTraits;
template <>
struct StageTraits<LlamaStage> {
  using Activations = StageActivations;
  using Element = float;                // weights and activations
  using Buffer = std::vector<float>;    // an (N, C) transfer buffer, constructed from its element count
  using Grad = float;                   // fp32 gradients
};

// Floats a Comm moves for n elements of E (rounded up: the buffers hold that many bytes).
template <class E>
constexpr size_t transfer_floats(size_t n) { return (n * sizeof(E) + sizeof(float) - 1) / sizeof(float); }

template <class Stage>
class PipelineExecutorT {
 public:
  using Traits = StageTraits<Stage>;
  using Element = typename Traits::Element;
  using Grad = typename Traits::Grad;

  // pp may be null (pp = 1); for a device stage it is a DeviceComm. micro_batches: per optimizer step
  // on this DP rank.
  PipelineExecutorT(Stage& stage, const Topology& topo, Comm* pp, int micro_batches);

  // batch(i) gives micro-batch i. The loss is Σ of the stage's forward results (the weighted loss on
  // the last stage, 0 elsewhere). Parameter gradients accumulate into grads. Between micro-batches
  // every rank asks `stop` (when given, on every rank); on true, run() completes its pending sends
  // and returns at once, stopped. `ready` (when given) hears the last micro-batch's backward progress
  // (LlamaStage::backward): after the last agreement point, so a run that reports anything completes.
  PipelineRun run(const Element* params, Grad* grads, const std::function<MicroBatch(int)>& batch,
                  const StopAgreement& stop = {}, const GradsReady& ready = nullptr);

  // Forward of micro-batches 0..count-1 only (evaluation): each stage receives, runs and passes on one
  // micro-batch at a time, in order, and asks `stop` after each but the last, like run(). `on_forward`
  // (when given) sees each micro-batch's activations right after its forward (iris-eval reads the
  // last stage's per-token losses from them), before the next forward overwrites them.
  using ForwardHook = std::function<void(int micro_batch, const typename Traits::Activations& acts)>;
  PipelineRun forward_only(const Element* params, int count, const std::function<MicroBatch(int)>& batch,
                           const StopAgreement& stop = {}, const ForwardHook& on_forward = nullptr);

  // The activation sets kept alive at once (1F1B: min(pp − stage, micro-batches)).
  int activation_sets() const { return static_cast<int>(acts_.size()); }

 private:
  using Buffer = typename Traits::Buffer;
  static float* floats(Element* p) { return reinterpret_cast<float*>(p); }
  static const float* floats(const Element* p) { return reinterpret_cast<const float*>(p); }

  Stage& stage_;
  Topology topo_;
  Comm* pp_;
  int micro_batches_;
  std::vector<PipelineAction> actions_;
  std::vector<std::unique_ptr<typename Traits::Activations>> acts_;  // slot = micro-batch % sets
  std::vector<Buffer> input_, dinput_;                     // per slot, (N, C)
  Buffer doutput_;                                         // (N, C)
  std::vector<std::unique_ptr<CommHandle>> pending_sends_; // per slot: forward send, backward send
};

using PipelineExecutor = PipelineExecutorT<LlamaStage>;

}  // namespace iris
