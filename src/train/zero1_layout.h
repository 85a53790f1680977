// ZeRO-1's plan for one DP group, shared by the host optimizer (zero1_cpu_optimizer.h) and the device one
// (cuda/zero1_cuda_optimizer.h): the shard geometry, the reduce-scatter buckets and AdamW's segments, and the
// step's gradient reduction in three calls (begin / grads_ready / finish), overlapped with the backward or not.
// The padded flat buffer (P rounded up to a multiple of dp) is cut into dp contiguous shards; rank d owns
// [d·S, (d+1)·S), S = padded / dp. Only the real parameters [0, P) have Adam state.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "parallel/comm.h"
#include "src/model/llama.h"
#include "src/model/param_table.h"
#include "src/train/grad_reduce.h"
#include "src/train/optimizer.h"

namespace iris {

struct Zero1Layout {
  int dp_size = 1, dp_rank = 0;
  size_t padded = 0;                     // flat buffers have this length
  size_t shard_begin = 0, shard_end = 0; // this rank's shard
  size_t bucket = 1;                     // elements of each shard per reduce-scatter call (or overlapped bucket)
  size_t adam_begin = 0, adam_end = 0;   // the real parameters of the shard: AdamW's range
  bool overlap = false;                  // gradients reduced during the backward (dp > 1 only)
  std::vector<AdamW::Segment> segments;  // [adam_begin, adam_end) cut at tensor boundaries

  // bucket_elements is clamped to [1, S]; overlap applies only when dp_size > 1.
  static Zero1Layout make(const ParamTable& table, int dp_size, int dp_rank, size_t bucket_elements, bool overlap);
  size_t shard() const { return shard_end - shard_begin; }
  int owner(size_t flat) const { return static_cast<int>(flat / shard()); }  // DP rank whose shard holds it
  // Reductions per step: overlapped buckets, else reduce-scatter calls; 0 with dp = 1.
  size_t grad_reduce_calls() const;
};

// The step's gradient reduction over the DP group, in three calls around the pipeline run: begin before
// it, grads_ready() given to it (null unless overlapping), finish after it and after the tied-embedding
// all-reduce. Overlapped, the buckets go to their owners during the backward (OverlappedGradReduce);
// otherwise finish runs the optimizer's bucketed reduce-scatter, the one part that differs between them.
class Zero1GradReduce {
 public:
  // dp: the DP group (host or device Comm; null when dp = 1). flat length and buckets from `layout`.
  Zero1GradReduce(const Zero1Layout& layout, Comm* dp);
  bool overlapped() const { return overlap_ != nullptr; }
  void begin(float* grads);
  GradsReady grads_ready();
  void finish(const std::function<void()>& reduce_scatter);
  size_t issued() const { return overlap_ ? overlap_->issued() : 0; }  // overlapped buckets issued this step

 private:
  std::unique_ptr<OverlappedGradReduce> overlap_;
};

}  // namespace iris
