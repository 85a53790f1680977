// ZeRO-1's gradient reduction overlapped with the backward pass (Megatron-LM's --overlap-grad-reduce):
// while the last micro-batch's backward runs from the last layer to the first, every bucket of the
// flat gradient buffer whose gradients are final is sent to its owner at once, so most of the DP
// communication hides behind the remaining layers' backward.
//
// The shard geometry is Zero1CpuOptimizer's: rank d owns the contiguous [d·S, (d+1)·S) of the padded
// flat buffer. A bucket here is a contiguous flat range inside one shard (at most `bucket` elements),
// reduced in place to its owner (Comm::ireduce), so it can go as soon as its own elements are final.
// The bucketed reduce-scatter (Zero1CpuOptimizer's non-overlapped path) needs the same slice of every
// shard at once, which the backward only finishes at its very end. The bytes moved are the same up to
// dp/(dp−1): a ring reduce sends each element once per link, a reduce-scatter (dp−1)/dp of it.
//
// The backward reports its progress as a flat offset (stage backward's GradsReady): everything from
// there to the end of the buffer is final. The stage's flat layout (ParamTable) puts the embedding
// first, then the layers in order, then the final norm and LM head, so the offsets only decrease.
// The embedding's buckets, which the tied-embedding all-reduce must precede, go in finish().
// Host-clean: the buffers are whatever the Comm moves (host memory for MpiComm, device for a DeviceComm).
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "parallel/comm.h"

namespace iris {

struct GradBucket {
  size_t begin = 0, end = 0;  // flat range [begin, end)
  int owner = 0;              // the DP rank whose shard holds it
};

// The buckets of a padded flat buffer of `padded` elements (a multiple of dp) cut into dp shards, each
// shard into runs of at most `bucket` elements from its start; in the order they are issued:
// descending flat offset.
std::vector<GradBucket> overlap_buckets(size_t padded, int dp, size_t bucket);

class OverlappedGradReduce {
 public:
  // dp: the DP group, of size > 1. padded and bucket as in overlap_buckets.
  OverlappedGradReduce(Comm* dp, size_t padded, size_t bucket);
  ~OverlappedGradReduce();
  OverlappedGradReduce(const OverlappedGradReduce&) = delete;
  OverlappedGradReduce& operator=(const OverlappedGradReduce&) = delete;

  // A new step's reduction of `grads` (padded,): nothing is issued yet.
  void begin(float* grads);
  // grads[offset, padded) are final: issues every bucket inside it not issued yet.
  void ready_from(size_t offset);
  // Issues the rest and waits for all. Afterwards this rank's shard of grads holds the DP sum (the rest
  // of the buffer: this rank's own values or partial sums).
  void finish();

  const std::vector<GradBucket>& buckets() const { return buckets_; }
  size_t issued() const { return next_; }

 private:
  Comm* dp_;
  std::vector<GradBucket> buckets_;
  float* grads_ = nullptr;
  size_t next_ = 0;  // buckets_[0, next_) have been issued this step
  size_t last_offset_ = 0;
  std::vector<std::unique_ptr<CommHandle>> in_flight_;
};

}  // namespace iris
