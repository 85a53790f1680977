// Runs one optimizer step's pipeline schedule (parallel/pipeline_schedule: a list of actions per
// stage) on this stage: forward and backward of each micro-batch, and the point-to-point transfers
// of activations (N, C) to the next stage and of their gradients back. With pp = 1 the schedule is
// forward/backward per micro-batch and no transfer happens.
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

// Asked at the agreement points between micro-batches (pipeline_schedule.h: with_agreement_points);
// a collective over every rank that must return the same answer everywhere. Null: never stop.
using StopAgreement = std::function<bool()>;

class PipelineExecutor {
 public:
  // pp may be null (pp = 1). micro_batches: per optimizer step on this DP rank.
  PipelineExecutor(const LlamaStage& stage, const Topology& topo, Comm* pp, int micro_batches);

  // batch(i) gives micro-batch i. The loss is Σ of the stage's forward results (the weighted loss on
  // the last stage, 0 elsewhere). Parameter gradients accumulate into grads. Between micro-batches
  // every rank asks `stop` (when given, on every rank); on true, run() completes its pending sends
  // and returns at once, stopped.
  PipelineRun run(const float* params, float* grads, const std::function<MicroBatch(int)>& batch,
                  const StopAgreement& stop = nullptr);

  // Forward of micro-batches 0..count-1 only (evaluation): each stage receives, runs and passes on one
  // micro-batch at a time, in order, and asks `stop` after each but the last, like run().
  PipelineRun forward_only(const float* params, int count, const std::function<MicroBatch(int)>& batch,
                           const StopAgreement& stop = nullptr);

  // The activation sets kept alive at once (1F1B: min(pp − stage, micro-batches)).
  int activation_sets() const { return static_cast<int>(acts_.size()); }

 private:
  const LlamaStage& stage_;
  Topology topo_;
  Comm* pp_;
  std::vector<PipelineAction> actions_;
  std::vector<std::unique_ptr<StageActivations>> acts_;   // slot = micro-batch % sets
  std::vector<std::vector<float>> input_, dinput_;         // per slot, (N, C)
  std::vector<float> doutput_;                             // (N, C)
  std::vector<std::unique_ptr<CommHandle>> pending_sends_; // per slot: forward send, backward send
};

}  // namespace iris
