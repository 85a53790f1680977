// What a training backend does in a step, behind one interface so the trainer reads the same for every
// device: forward and backward over the pipeline schedule, forward only (evaluation), the ZeRO-1 gradient
// reduction with this rank's Σ g², the AdamW update, and its state streamed to and from checkpoints.
// Implementations: cpu_backend.cpp (host fp32: LlamaStage, PipelineExecutor, Zero1CpuOptimizer) and, in
// CUDA builds, cuda/cuda_backend.cpp (bf16 stage, Zero1CudaOptimizer; no host copy of the state). Host-clean: no
// CUDA header, so CPU-only builds compile the trainer against it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/core/dtype.h"
#include "src/model/llama.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"
#include "src/train/config.h"
#include "src/train/optimizer.h"
#include "src/train/pipeline_executor.h"
#include "src/train/state_stream.h"
#include "src/train/zero1_layout.h"

namespace iris {

class TrainingBackend {
 public:
  virtual ~TrainingBackend() = default;

  // The initial state: weights from the counter-based RNG as ParamTable::initialize gives them (same
  // values on every backend and layout), Adam moments zero.
  virtual void initialize(uint64_t seed) = 0;
  // Zeroes the gradients, starts the step's gradient reduction and runs the pipeline schedule
  // (PipelineExecutor::run; overlapped buckets are issued during the last backward). Stopped: the
  // gradients are partial and must be dropped.
  virtual PipelineRun forward_backward(const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) = 0;
  // PipelineExecutor::forward_only on the current weights.
  virtual PipelineRun forward_only(int count, const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) = 0;
  // The tied-embedding all-reduce and the rest of the ZeRO-1 reduction; returns this rank's Σ g² over its
  // grad_norm_ranges (the trainer sums it over the world).
  virtual double reduce_grads_sum_squares() = 0;
  // AdamW on this rank's shard with gradients × grad_scale (clipping), then the all-gather of the weights
  // over DP. step is 1-based (skipped steps not counted).
  virtual void update(double lr, int step, float grad_scale) = 0;
  // The weights and Adam shard, for checkpoints, weight exports and weight loads (StateStream).
  virtual StateStore& state() = 0;

  virtual size_t grad_buckets_issued() const = 0;  // overlapped buckets issued so far this step
  virtual int activation_sets() const = 0;
  virtual std::string device_name() const = 0;     // "cpu" or the GPU's name
  virtual std::optional<double> peak_tflops() const = 0;  // one rank's dense peak, when known
  // Start-up lines: what the backend holds where (weights, gradients, optimizer shard, staging).
  virtual std::string describe() const = 0;
  // Device memory in use now, MiB (the whole GPU: cudaMemGetInfo's total − free); none on the CPU.
  virtual std::optional<double> device_memory_in_use_mib() const = 0;
};

struct TrainingBackendSetup {
  const LlamaConfig& model;
  const Topology& topo;
  const ParamTable& table;
  StageLayers layers;
  int micro_batch = 1, seq_len = 1, grad_accum = 1;
  const Zero1Layout& layout;                           // ZeRO-1 shards, buckets, overlap
  AdamWConfig adam;
  std::vector<std::pair<size_t, size_t>> norm_ranges;  // grad_norm_ranges of this rank's shard
  Communicators& host_comms;                           // the MPI groups (the CPU backend computes over them)
  CommKind comm = CommKind::Mpi;                       // parallel.comm (the CUDA backend's device communicators)
  double timeout_s = 0;                                // parallel.timeout_s
  Recompute recompute = Recompute::None;               // train.recompute
  DType grad_dtype = DType::F32;                       // train.grad_dtype (cuda; BF16: layout must not overlap)
  size_t staging_elements = 1;                         // the state stream's staging buffer
};

// train.device. Collective over MPI_COMM_WORLD for cuda (it builds the device
// communicators). Throws UserError naming train.device when this build has no CUDA backend or no CUDA
// device is visible, and the CUDA stage's own UserErrors (e.g. an unsupported head size).
std::unique_ptr<TrainingBackend> make_training_backend(Device device, const TrainingBackendSetup& setup);

std::unique_ptr<TrainingBackend> make_cpu_backend(const TrainingBackendSetup& setup);
// In a build without CUDA (cuda_backend_none.cpp) it throws the UserError with how to rebuild.
std::unique_ptr<TrainingBackend> make_cuda_backend(const TrainingBackendSetup& setup);

}  // namespace iris
