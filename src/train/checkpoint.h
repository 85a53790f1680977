// What the trainer saves and restores (docs/design.md decision 9; the on-disk layer is io/checkpoint). Weights go to
// the file of each dp_rank-0 rank as whole TP blocks; every rank writes its ZeRO-1 shard of the Adam
// moments (on the CPU the fp32 master weights are the weight buffer itself). Data order is a pure
// function of (seed, sample index) and the LR schedule of the step, so step, skipped steps, tokens
// and consumed samples are the rest of the state. Loading works at any layout. The state moves through a
// StateStream (state_stream.h), one tensor at a time through its bounded staging buffer.
#pragma once
#include <chrono>
#include <filesystem>

#include "io/checkpoint.h"
#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"
#include "src/train/zero1_cpu_optimizer.h"
#include "src/train/state_stream.h"

namespace iris {

struct TrainProgress {
  int64_t step = 0;              // optimizer steps done
  int skipped_steps = 0;
  long long tokens = 0;
  int64_t consumed_samples = 0;  // global samples consumed (the data position)
};

// Everything of one rank that goes into or comes out of a checkpoint.
struct CheckpointState {
  const LlamaConfig& model;
  const Topology& topo;
  const ParamTable& table;
  StateStream& state;                // the flat weights and this rank's shard of Adam m, v
  bool optimizer_state;              // false: weights only (not saved; on load, the moments are left alone)
  Comm* world;
  std::string run_config_ini;
};

struct SaveReport {
  std::filesystem::path dir;
  double seconds = 0;
  uint64_t bytes = 0;  // data bytes over all ranks
};

// Collective over `world`. Writes <root>/step_XXXXXXXX/ atomically (tmp dir, all ranks agree, manifest,
// rename, then `latest`), records `val_loss` (this step's validation loss, if evaluated) in the manifest,
// then applies `retention` (io::prune_checkpoints: the newest, the best, root/best). On failure on any
// rank every rank throws UserError and the previous checkpoints are untouched.
SaveReport save_checkpoint(const CheckpointState& state, const TrainProgress& progress,
                           const std::filesystem::path& root, io::Retention retention,
                           std::optional<double> val_loss = std::nullopt);

// Collective-free: each rank reads what it needs from `dir`. Checks the manifest against the model
// (vocab, shapes) and every tensor's global shape; names file and tensor on any problem.
TrainProgress load_checkpoint(const CheckpointState& state, const std::filesystem::path& dir);

// Checks that a checkpoint's model config describes the same tensors as `model`.
void check_model_matches(const io::Manifest& manifest, const LlamaConfig& model, const std::string& checkpoint,
                         const std::string& model_source);

// The dataset description of e's TP block elements [flat_begin, flat_end) in `group`; weight_slice:
// the whole block (valid rows) in "weights".
io::SliceInfo checkpoint_slice(const ParamEntry& e, const std::string& group, int64_t flat_begin, int64_t flat_end);
io::SliceInfo weight_slice(const ParamEntry& e);
// The global rows [begin, end) of e's tensor that this rank's block touches.
std::pair<int64_t, int64_t> rows_needed(const ParamEntry& e);
// Writes this rank's weights (when write_weights) and, when optimizer_state, its Adam shard into an open
// file. Collective over the state's DP group (every DP rank calls it; the weights are gathered from the
// shard owners), so a failed write is thrown only after the gathers are done.
void write_rank_slices(io::CheckpointFileWriter& file, const ParamTable& table, StateStream& state,
                       bool optimizer_state, bool write_weights);

}  // namespace iris
