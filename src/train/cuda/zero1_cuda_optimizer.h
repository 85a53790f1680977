// ZeRO-1 on device buffers (the GPU counterpart of src/train/zero1_cpu_optimizer; both follow one
// Zero1Layout: shard geometry, buckets, AdamW segments, and share its Zero1GradReduce): fp32 gradients summed over the DP DeviceComm in buckets, each
// rank's fp32 master shard and Adam m, v updated on the device by cuda::adamw_update, which also writes
// the bf16 shard of the weights the stage reads, then the bf16 weights all-gathered.
// The gradient sum is either overlapped with the backward (src/train/grad_reduce.h: each bucket reduced
// in place to its owner on the DeviceComm's stream once the backward work before it is queued) or, with
// parallel.overlap_grad_reduce = false, the bucketed reduce-scatter after the backward below.
//
// Bucket staging: MPI/NCCL reduce-scatter wants the bucket rank-major (the same slice of every shard one
// after another); one cudaMemcpy2DAsync gathers dp rows of n elements at the shard pitch into it, and
// the reduced block is received straight into the gradient buffer.
// bf16 gradients (train.grad_dtype = bf16): the flat gradient buffer is bf16 (2 B/param instead of 4); the
// DP sum stays fp32: each bucket's dp rows are cast to fp32 into the reduce-scatter staging and reduced into
// an fp32 buffer of this rank's shard only (4/dp B/param; so 2 + 4/dp in all, which saves nothing at
// dp = 2), which the norm and AdamW read. With dp = 1 there
// is nothing to sum, and they read the bf16 gradients directly (their kernels widen bf16 exactly), so no
// fp32 copy is made. The overlapped reduction is fp32 only: it reduces the flat buffer in place, and for
// bf16 it would need an fp32 copy of every bucket in flight, which is the whole buffer again.
// bf16 all-gather: Comm counts floats, so each rank's shard of S bf16 weights travels as S/2 floats. When
// S is odd, the shards are staged into a buffer of even pitch and unpacked with a 2-D copy.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <utility>
#include <vector>

#include "parallel/comm.h"
#include "src/core/dtype.h"
#include "src/kernels/cuda/common.cuh"
#include "src/core/device_buffer.h"
#include "src/train/optimizer.h"
#include "src/train/state_stream.h"
#include "src/train/zero1_layout.h"

namespace iris {

class Zero1CudaOptimizer {
 public:
  // dp: the DP DeviceComm (null when dp = 1). Work is queued on `stream`. grad_dtype: F32 or BF16 (BF16
  // needs a layout without overlapped reduction). all_reduce_max: the most elements one all_reduce_grads
  // call will sum (the tied embedding; 0: none), which sizes its bf16 staging. Weights, master and moments
  // start at zero.
  Zero1CudaOptimizer(const Zero1Layout& layout, AdamWConfig adam, Comm* dp, cudaStream_t stream,
              DType grad_dtype = DType::F32, size_t all_reduce_max = 0);

  cuda::bf16* weights() { return weights_.data(); }  // (padded,) bf16, the stage's parameters
  void* grads();                                     // (padded,) fp32 or bf16, the stage's gradients (+=)
  DType grad_dtype() const { return grad_dtype_; }
  size_t allocated_bytes() const;

  // The state a checkpoint streams, one piece at a time (StateStore's contract; synchronous).
  // host (count,) ← part[begin, begin + count): Weights from the fp32 master (inside this rank's shard),
  // moments from the Adam shard.
  void read_state(StatePart part, size_t begin, size_t count, float* host);
  // part[begin, begin + count) ← src (count,) device fp32. Weights: the bf16 weights anywhere and the
  // fp32 master where the range meets this rank's shard; moments: inside the Adam shard.
  void write_state(StatePart part, size_t begin, size_t count, const float* src);
  void zero_moments();

  void zero_grads();
  // grads()[offset, offset + count) summed over `comm` (the tied embedding's first and last stage), in fp32:
  // bf16 gradients go through an fp32 staging buffer in chunks and are rounded back to bf16 once.
  void all_reduce_grads(Comm& comm, size_t offset, size_t count);
  // The step's gradient reduction, as Zero1CpuOptimizer's begin/grads_ready/finish_grad_reduce (the
  // shared Zero1GradReduce; the layout's overlap decides): finish_grad_reduce leaves the DP-summed shard in
  // grads()[shard] (the rest is stale), or for bf16 gradients at dp > 1 in the fp32 shard buffer. The
  // overlapped buckets run on the DP DeviceComm's stream after the backward work queued before each is issued.
  void begin_grad_reduce();
  GradsReady grads_ready();
  void finish_grad_reduce();
  size_t grad_buckets_issued() const { return reduce_.issued(); }
  // Σ g² over `ranges` (flat indices inside the shard), in double.
  double sum_squares(const std::vector<std::pair<size_t, size_t>>& ranges);
  // AdamW on the shard (grads × grad_scale), bf16 shard written, then the all-gather of the weights.
  void step(double lr, int step, float grad_scale);

 private:
  float* state_piece(StatePart part, size_t begin, size_t count);  // checked device pointer
  void all_gather_weights();
  void reduce_scatter_grads();
  bool bf16_grads() const { return grad_dtype_ == DType::BF16; }

  Zero1Layout layout_;
  AdamWConfig adam_;
  Comm* dp_;
  cudaStream_t stream_;
  DType grad_dtype_;
  int dp_size_ = 1;
  size_t padded_ = 0, shard_begin_ = 0, shard_ = 0, bucket_ = 0;
  size_t adam_begin_ = 0, adam_end_ = 0;  // the real parameters of the shard (AdamW's range)
  DeviceBuffer<cuda::bf16> weights_;      // (padded + 1,): +1 so an odd total still gathers as whole floats
  DeviceBuffer<float> grads_;             // (padded,) fp32 gradients (grad_dtype F32)
  DeviceBuffer<cuda::bf16> grads_bf16_;   // (padded,) bf16 gradients (grad_dtype BF16)
  DeviceBuffer<float> shard_grads_;       // (shard,) the DP-summed fp32 shard (BF16 with dp > 1)
  DeviceBuffer<float> master_, m_, v_;    // (shard,) each; element i is flat element shard_begin + i
  DeviceBuffer<float> send_;              // (dp · bucket,) reduce-scatter staging (dp > 1, not overlapped);
                                          // also the fp32 staging of all_reduce_grads on bf16 gradients
  DeviceBuffer<cuda::bf16> gather_;       // (dp · even shard,) all-gather staging (dp > 1, odd shard only)
  DeviceBuffer<double> sums_, partials_;  // sum_squares output per range and its scratch
  Zero1GradReduce reduce_;                // overlapped with the backward, or reduce_scatter_grads
};

}  // namespace iris
