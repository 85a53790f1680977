// The trainer's GPU half (--train.device cuda): the CUDA model stage, its pipeline executor and the
// ZeRO-1 optimizer on device buffers (bf16 weights, fp32 or bf16 gradients, fp32 master + Adam m, v shard),
// communicating through DeviceComms (--parallel.comm nccl | mpi). The Trainer keeps its host fp32
// weights and host AdamW as the checkpoint mirror: upload() after initialising or loading them,
// download() before saving. Host-clean (no CUDA headers): CPU-only builds compile the trainer against it,
// and make_device_training() then refuses with how to rebuild.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parallel/topology.h"
#include "src/core/dtype.h"
#include "src/model/llama.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"
#include "src/train/distributed_optimizer.h"
#include "src/train/pipeline_executor.h"

namespace iris {

class DeviceTraining {
 public:
  virtual ~DeviceTraining() = default;

  // Host → device. params (padded_size,) fp32: becomes the bf16 weights and this rank's fp32 master
  // shard; adam: this rank's Adam m, v shard.
  virtual void upload(const float* params, const AdamW& adam) = 0;
  // Device → host: the fp32 master shard into params[shard_begin, shard_end) and the moments into adam.
  // The rest of params is untouched (the caller all-gathers it over DP).
  virtual void download(float* params, AdamW& adam) = 0;

  // Zeroes the gradients and runs the step's pipeline schedule: PipelineExecutor::run on the device
  // weights and gradients (stopped: the gradients are partial and must be dropped).
  virtual PipelineRun forward_backward(const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) = 0;
  // PipelineExecutor::forward_only on the device weights.
  virtual PipelineRun forward_only(int count, const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) = 0;
  // The tied-embedding all-reduce and the rest of the ZeRO-1 gradient reduction (the part not already
  // overlapped with the backward); returns this rank's Σ g² over the
  // grad_norm_ranges (to be summed over the world like the CPU path's).
  virtual double reduce_grads_sum_squares() = 0;
  // AdamW on this rank's shard with gradients × grad_scale (clipping), then the all-gather of the bf16
  // weights over DP. step is 1-based (skipped steps not counted).
  virtual void update(double lr, int step, float grad_scale) = 0;

  // Buckets of the overlapped gradient reduction issued so far this step (0 without overlap).
  virtual size_t grad_buckets_issued() const = 0;
  virtual int activation_sets() const = 0;
  virtual std::string device_name() const = 0;
  // Device memory in use now (cudaMemGetInfo: total − free, so the whole GPU: the CUDA context and any
  // other process on it included), MiB.
  virtual double used_memory_mib() const = 0;
  // Bytes of the flat device buffers: bf16 weights, fp32 or bf16 gradients (+ the fp32 DP-summed shard of
  // bf16 ones at dp > 1), fp32 master + Adam shard, ZeRO staging
  // (not the activations, the stage's scratch or cuBLASLt's workspace).
  virtual size_t allocated_bytes() const = 0;
};

struct DeviceTrainingSetup {
  const LlamaConfig& model;
  const Topology& topo;
  const ParamTable& table;
  StageLayers layers;
  int micro_batch = 1, seq_len = 1, grad_accum = 1;
  const DistributedOptimizer& host_optimizer;  // shard geometry, buckets, AdamW segments and settings
  std::vector<std::pair<size_t, size_t>> norm_ranges;  // grad_norm_ranges of this rank's shard
  std::string comm;                            // parallel.comm
  double timeout_s = 0;                        // parallel.timeout_s
  Recompute recompute = Recompute::None;       // train.recompute
  DType grad_dtype = DType::F32;               // train.grad_dtype (BF16: host_optimizer must not overlap)
};

// Throws the UserError make_device_training would (no CUDA backend in this build, no visible device),
// cheaply: the trainer calls it before it allocates and initialises the host copy of the weights, which
// takes minutes for a 7B model.
void check_device_training_available(int rank);

// Collective over MPI_COMM_WORLD (builds the device communicators). Throws UserError naming
// train.device when this build has no CUDA backend or no CUDA device is visible, and the CUDA stage's
// own UserErrors (e.g. an unsupported head size).
std::unique_ptr<DeviceTraining> make_device_training(const DeviceTrainingSetup& setup);

}  // namespace iris
