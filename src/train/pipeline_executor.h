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

class PipelineExecutor {
 public:
  // pp may be null (pp = 1). micro_batches: per optimizer step on this DP rank.
  PipelineExecutor(const LlamaStage& stage, const Topology& topo, Comm* pp, int micro_batches);

  // batch(i) gives micro-batch i. Returns Σ of the stage's forward results (the weighted loss on the
  // last stage, 0 elsewhere). Parameter gradients accumulate into grads.
  double run(const float* params, float* grads, const std::function<MicroBatch(int)>& batch);

  // Forward of micro-batches 0..count-1 only (evaluation): each stage receives, runs and passes on one
  // micro-batch at a time, in order. Returns Σ of the stage's forward results like run().
  double forward_only(const float* params, int count, const std::function<MicroBatch(int)>& batch);

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
