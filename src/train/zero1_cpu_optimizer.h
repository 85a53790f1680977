// ZeRO-1 (Rajbhandari et al. 2020, "ZeRO", stage 1; Megatron-LM's distributed optimizer): the flat
// gradient buffer is reduce-scattered over the data-parallel group in buckets, each DP rank updates
// only its contiguous shard of fp32 master weights with its shard of Adam moments, and the updated
// weights are all-gathered back. With dp = 1 it is plain AdamW on the whole buffer.
//
// The flat buffer (length P, padded to P_pad = a multiple of dp) is cut into dp contiguous shards;
// rank d owns [d·P_pad/dp, (d+1)·P_pad/dp). A bucket is one reduce-scatter call covering the same
// slice of every shard, staged into a rank-major buffer as MPI's reduce-scatter expects. The geometry
// and the begin/ready/finish of the reduction are zero1_layout.h's, shared with the device optimizer.
#pragma once
#include <memory>
#include <utility>
#include <vector>

#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/model/llama.h"
#include "src/train/grad_reduce.h"
#include "src/train/optimizer.h"
#include "src/train/zero1_layout.h"

namespace iris {

class Zero1CpuOptimizer {
 public:
  // dp may be null (dp = 1). bucket_elements: elements of each shard reduced per call. overlap: reduce
  // the gradients during the backward (grad_reduce.h; parallel.overlap_grad_reduce), when dp > 1.
  Zero1CpuOptimizer(const ParamTable& table, AdamWConfig config, Comm* dp, size_t bucket_elements,
                       bool overlap = false);

  size_t padded_size() const { return layout_.padded; }  // flat buffers must have this length
  size_t shard_begin() const { return layout_.shard_begin; }
  size_t shard_end() const { return layout_.shard_end; }
  size_t bucket() const { return layout_.bucket; }          // elements of each shard per reduce-scatter call
  int dp_size() const { return layout_.dp_size; }
  const Zero1Layout& layout() const { return layout_; }
  // Bytes of optimizer state this rank holds: fp32 master shard + Adam m and v = 12 bytes per element
  // of the shard (on the CPU the master shard is the fp32 weight buffer itself).
  size_t state_bytes() const { return 12 * layout_.shard(); }

  // A step's gradient reduction over the DP group, in three calls around the pipeline run:
  // begin_grad_reduce before it, grads_ready() given to it (null unless overlapping), finish_grad_reduce
  // after it and after the tied-embedding all-reduce. Afterwards grads[shard] holds the DP-summed shard
  // (the rest of the buffer is stale). Without overlap, finish_grad_reduce runs the bucketed
  // reduce-scatter; overlapped, the same sums come from buckets reduced to their owners (in another
  // order when dp > 2).
  bool overlaps_grad_reduce() const { return reduce_.overlapped(); }
  void begin_grad_reduce(float* grads) { reduce_.begin(grads); }
  GradsReady grads_ready() { return reduce_.grads_ready(); }
  void finish_grad_reduce(float* grads);
  // Calls per step (buckets when overlapping, else reduce-scatter calls; 0 with dp = 1), and how many
  // overlapped buckets have been issued so far this step.
  size_t grad_reduce_calls() const { return layout_.grad_reduce_calls(); }
  size_t grad_buckets_issued() const { return reduce_.issued(); }
  // Adam update of this rank's shard, then all-gather of the updated weights over the DP group.
  void step(float* params, const float* grads, double lr, int step, float grad_scale);
  AdamW& adam() { return *adam_; }
  const AdamW& adam() const { return *adam_; }

 private:
  void reduce_scatter_grads(float* grads);

  Comm* dp_;
  Zero1Layout layout_;
  std::unique_ptr<AdamW> adam_;
  Zero1GradReduce reduce_;
  std::vector<float> send_, recv_;  // reduce-scatter staging: dp · bucket and bucket elements (not overlapping)
};

// The flat ranges [b, f) inside [shard_begin, shard_end) whose gradients count in the global gradient
// norm: replicated tensors once per TP group (tp_rank 0), the tied embedding once (its first-stage copy).
// Adjacent counted tensors merge into one range. Both backends count exactly these elements.
std::vector<std::pair<size_t, size_t>> grad_norm_ranges(const ParamTable& table, const Topology& topo,
                                                        size_t shard_begin, size_t shard_end);

}  // namespace iris
