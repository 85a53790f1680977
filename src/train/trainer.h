// The training loop: builds the model stage, data, optimizer and outputs from a RunConfig, then
// runs optimizer steps (forward and backward of every micro-batch, gradient norm and clipping,
// AdamW) and reports metrics. Everything is validated before anything is written to output.dir.
// What runs where is the TrainingBackend's (training_backend.h: CPU or CUDA); this loop reads the same
// for both.
#pragma once
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/model/llama.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"
#include "src/train/checkpoint.h"
#include "src/train/config.h"
#include "src/train/data_loader.h"
#include "src/train/data_sources.h"
#include "src/train/divergence.h"
#include "src/train/lr_schedule.h"
#include "src/train/metrics.h"
#include "src/train/pipeline_executor.h"
#include "src/train/run_lock.h"
#include "src/train/run_plan.h"
#include "src/train/state_stream.h"
#include "src/train/training_backend.h"
#include "src/train/zero1_layout.h"

namespace iris {

class Trainer {
 public:
  // world/rank: the MPI world. Throws UserError on bad configuration, before creating outputs.
  Trainer(RunConfig config, int world, int rank);
  ~Trainer();

  // Runs optimizer steps up to train.steps (from the loaded checkpoint's step, if any); returns the
  // metrics of each. Saves checkpoints every checkpoint.every steps, on request and at the end. A stop
  // signal (SIGUSR1, SIGTERM) or the time limit ends it early, after a checkpoint: see stop_reason().
  std::vector<StepMetrics> run();
  // Why run() ended before train.steps: "" (it did not), or e.g. "SIGUSR1", "the time limit".
  const std::string& stop_reason() const { return stop_reason_; }
  // The process exit status run() calls for (src/core/exit_codes.h).
  int exit_status() const;
  // Saves a checkpoint of the state after `progress_.step` steps (collective).
  void save_checkpoint();
  // One optimizer step (1-based); public for tests. Empty when the ranks agreed to stop between its
  // micro-batches: the step is dropped (nothing changed; it runs again after a restart).
  std::optional<StepMetrics> step(int step);
  // Mean loss over the trained tokens of the eval.batches validation batches (forward only; collective).
  // Empty when the ranks agreed to stop between its micro-batches.
  std::optional<double> validation_loss();

  const ParamTable& table() const { return table_; }
  const Topology& topology() const { return topo_; }
  const TrainProgress& progress() const { return progress_; }
  int64_t global_batch() const { return global_batch_; }

 private:
  // The constructor's steps, in order (trainer.cpp).
  void set_up_model(int world, int rank);
  void open_data();
  void set_up_backend();
  void start_clock();
  void open_outputs();
  void describe_startup() const;
  void save_weights();  // collective over DP
  // √(Σ over the world of each rank's Σ g² over its counted shard elements).
  double global_grad_norm(double local_sumsq) const;
  // The initial weights: model.hf_dir, model.init_checkpoint (weights only) or the seeded RNG.
  void initialize_weights();
  CheckpointState checkpoint_state(bool optimizer_state = true);
  void maybe_load_checkpoint();
  // Whether the deadline is near: at a step boundary, too near for another step and a save; between
  // micro-batches (mid_step), too near for a save.
  bool time_is_up(bool mid_step) const;
  // The stop agreement (collective over the world): whether any rank received a stop signal or sees
  // the deadline (time_is_up(mid_step)); sets stop_reason_.
  bool agree_to_stop(bool mid_step);
  // The same between micro-batches, in two halves (StopAgreement: pipeline_executor.h): a non-blocking
  // all-reduce started at one agreement point and finished at a later one.
  StopAgreement mid_step_agreement();
  void start_agreement();
  bool finish_oldest_agreement();
  // Sets stop_reason_ from an agreement's result (signal number, time limit); true when it says stop.
  bool take_agreement(const float seen[2]);
  struct PendingAgreement {
    float seen[2];
    std::unique_ptr<CommHandle> done;
  };
  std::deque<std::unique_ptr<PendingAgreement>> agreements_;
  // Fills weights[m] = mask / (trained tokens of `batches` over all DP ranks); returns that count.
  double set_loss_weights(const std::vector<Batch>& batches, std::vector<std::vector<float>>& weights);
  // Trained tokens (loss-mask sum) of these micro-batches over the DP ranks (collective over dp).
  double trained_tokens(const std::vector<Batch>& batches) const;
  // weights[m][i] = loss_mask · scale.
  static void weigh_tokens(const std::vector<Batch>& batches, float scale, std::vector<std::vector<float>>& weights);
  void fill_validation_batch(uint64_t k, uint64_t rows, Batch* micro_batches) const;
  MicroBatch micro_batch(const Batch& b, const std::vector<float>& weights) const;

  RunConfig config_;
  LlamaConfig model_config_;
  Topology topo_;
  Communicators comms_;
  StageLayers layers_;
  ParamTable table_;
  Zero1Layout layout_;                           // ZeRO-1 shards and buckets of this rank's DP group
  std::unique_ptr<TrainingBackend> backend_;     // train.device: the stage, executor, optimizer and state
  std::unique_ptr<StateStream> state_;           // the backend's state, for checkpoints and weight files
  std::optional<double> peak_tflops_;            // one rank's peak for MFU, when known
  std::optional<double> device_peak_mib_;        // this rank's highest device memory in use seen (GPU only)
  DataSources data_;                  // training rows, validation rows (null without data.split)
  std::unique_ptr<MetricsWriter> metrics_;
  LrSchedule schedule_;
  int64_t global_batch_ = 0;  // samples per optimizer step over all DP ranks
  RunPlan plan_;              // train.steps, or the steps of train.epochs
  std::vector<Batch> batches_;        // one per micro-batch of the step
  std::vector<std::vector<float>> loss_weights_;  // per micro-batch, (B, T)
  std::vector<Batch> eval_batches_;                // eval.batches × grad_accum micro-batches, filled once
  std::vector<std::vector<float>> eval_weights_;
  TrainProgress progress_;            // steps done, skipped steps, tokens, consumed samples
  double elapsed_s_ = 0;
  double deadline_ = 0;               // seconds since the epoch by which to have stopped (0: none)
  double slowest_step_s_ = 0, last_save_s_ = 0;
  std::optional<std::pair<int64_t, double>> last_val_loss_;  // (step, val_loss) of the latest evaluation
  std::string stop_reason_;
  bool reduce_overlap_logged_ = false;
  std::string abandoned_;             // what a stop between micro-batches dropped, e.g. "step 7 after 2 of 8 micro-batches"
  bool stopped_with_checkpoint_ = false;
  std::unique_ptr<RunLock> run_lock_;  // rank 0: checkpoint.dir is this run's until the trainer ends
  DivergenceGuard divergence_;        // fed every step's skip decision; stops a diverged run (exit 3)
};

}  // namespace iris
