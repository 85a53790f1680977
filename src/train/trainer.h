// The training loop: builds the model stage, data, optimizer and outputs from a RunConfig, then
// runs optimizer steps (forward and backward of every micro-batch, gradient norm and clipping,
// AdamW) and reports metrics. Everything is validated before anything is written to output.dir.
#pragma once
#include <memory>
#include <vector>

#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/model/llama.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"
#include "src/train/config.h"
#include "src/train/data_loader.h"
#include "src/train/lr_schedule.h"
#include "src/train/metrics.h"
#include "src/train/distributed_optimizer.h"
#include "src/train/pipeline_executor.h"

namespace iris {

class Trainer {
 public:
  // world/rank: the MPI world. Throws UserError on bad configuration, before creating outputs.
  Trainer(RunConfig config, int world, int rank);
  ~Trainer();

  // Runs train.steps optimizer steps; returns the metrics of each.
  std::vector<StepMetrics> run();
  // One optimizer step (1-based); public for tests.
  StepMetrics step(int step);

  const ParamTable& table() const { return table_; }
  const std::vector<float>& params() const { return params_; }
  const Topology& topology() const { return topo_; }
  int64_t global_batch() const { return global_batch_; }

 private:
  void describe_startup() const;
  void save_weights() const;
  double global_grad_norm() const;

  RunConfig config_;
  LlamaConfig model_config_;
  Topology topo_;
  Communicators comms_;
  StageLayers layers_;
  ParamTable table_;
  std::vector<float> params_, grads_;  // flat, table_.total_numel()
  std::unique_ptr<LlamaStage> stage_;
  std::unique_ptr<PipelineExecutor> executor_;
  std::unique_ptr<PretrainLoader> loader_;
  std::unique_ptr<DistributedOptimizer> optimizer_;
  std::unique_ptr<MetricsWriter> metrics_;
  CosineSchedule schedule_;
  int64_t global_batch_ = 0;  // samples per optimizer step over all DP ranks
  std::vector<Batch> batches_;        // one per micro-batch of the step
  std::vector<float> loss_weight_;
  std::vector<float> norm_weight_;    // per flat element of the shard: 1 if it counts in the global grad norm
  int skipped_steps_ = 0;
  long long tokens_ = 0;
  double elapsed_s_ = 0;
};

}  // namespace iris
