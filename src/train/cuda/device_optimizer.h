// ZeRO-1 on device buffers (the GPU counterpart of src/train/distributed_optimizer, whose shard geometry,
// buckets and AdamW segments it reuses): fp32 gradients summed over the DP DeviceComm in buckets, each
// rank's fp32 master shard and Adam m, v updated on the device by cuda::adamw_update, which also writes
// the bf16 shard of the weights the stage reads, then the bf16 weights all-gathered.
// The gradient sum is either overlapped with the backward (src/train/grad_reduce.h: each bucket reduced
// in place to its owner on the DeviceComm's stream once the backward work before it is queued) or, with
// parallel.overlap_grad_reduce = false, the bucketed reduce-scatter after the backward below.
//
// Bucket staging: MPI/NCCL reduce-scatter wants the bucket rank-major (the same slice of every shard one
// after another); one cudaMemcpy2DAsync gathers dp rows of n elements at the shard pitch into it, and
// the reduced block is received straight into the gradient buffer.
// bf16 all-gather: Comm counts floats, so each rank's shard of S bf16 weights travels as S/2 floats. When
// S is odd, the shards are staged into a buffer of even pitch and unpacked with a 2-D copy.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <utility>
#include <vector>

#include "parallel/comm.h"
#include "src/kernels/cuda/common.cuh"
#include "src/train/cuda/device_buffer.h"
#include "src/train/distributed_optimizer.h"
#include "src/train/grad_reduce.h"

namespace iris {

class DeviceZero1 {
 public:
  // dp: the DP DeviceComm (null when dp = 1). Work is queued on `stream`.
  DeviceZero1(const DistributedOptimizer& host, Comm* dp, cudaStream_t stream);

  cuda::bf16* weights() { return weights_.data(); }  // (padded,) bf16, the stage's parameters
  float* grads() { return grads_.data(); }           // (padded,) fp32, the stage's gradients (+=)
  size_t allocated_bytes() const;

  void upload(const float* params, const AdamW& adam);
  void download(float* params, AdamW& adam);

  void zero_grads();
  // The step's gradient reduction, as DistributedOptimizer's begin/grads_ready/finish_grad_reduce (the
  // host optimizer's overlaps_grad_reduce() decides): finish_grad_reduce leaves the DP-summed shard in
  // grads()[shard] (the rest is stale). The overlapped buckets run on the DP DeviceComm's stream after
  // the backward work queued before each is issued.
  void begin_grad_reduce();
  GradsReady grads_ready();
  void finish_grad_reduce();
  size_t grad_buckets_issued() const { return overlap_ ? overlap_->issued() : 0; }
  // Σ g² over `ranges` (flat indices inside the shard), in double.
  double sum_squares(const std::vector<std::pair<size_t, size_t>>& ranges);
  // AdamW on the shard (grads × grad_scale), bf16 shard written, then the all-gather of the weights.
  void step(double lr, int step, float grad_scale);

 private:
  void all_gather_weights();
  void reduce_scatter_grads();

  const DistributedOptimizer& host_;
  Comm* dp_;
  cudaStream_t stream_;
  int dp_size_ = 1;
  size_t padded_ = 0, shard_begin_ = 0, shard_ = 0, bucket_ = 0;
  size_t adam_begin_ = 0, adam_end_ = 0;  // the real parameters of the shard (AdamW's range)
  DeviceBuffer<cuda::bf16> weights_;      // (padded + 1,): +1 so an odd total still gathers as whole floats
  DeviceBuffer<float> grads_;             // (padded,)
  DeviceBuffer<float> master_, m_, v_;    // (shard,) each; element i is flat element shard_begin + i
  DeviceBuffer<float> send_;              // (dp · bucket,) reduce-scatter staging (dp > 1)
  DeviceBuffer<cuda::bf16> gather_;       // (dp · even shard,) all-gather staging (dp > 1, odd shard only)
  DeviceBuffer<double> sums_, partials_;  // sum_squares output per range and its scratch
  std::unique_ptr<OverlappedGradReduce> overlap_;  // parallel.overlap_grad_reduce with dp > 1
};

}  // namespace iris
