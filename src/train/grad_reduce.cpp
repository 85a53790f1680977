#include "src/train/grad_reduce.h"

#include <algorithm>
#include <cstdint>

#include "src/core/check.h"

namespace iris {

std::vector<GradBucket> overlap_buckets(size_t padded, int dp, size_t bucket) {
  IRIS_CHECK(dp > 0 && padded % dp == 0 && bucket > 0, "overlap_buckets: padded {} over dp {}, bucket {}", padded, dp,
             bucket);
  const size_t shard = padded / dp;
  std::vector<GradBucket> out;
  for (int d = dp; d-- > 0;) {
    const size_t first = d * shard, last = first + shard;
    const size_t runs = (shard + bucket - 1) / bucket;
    for (size_t r = runs; r-- > 0;) out.push_back({first + r * bucket, std::min(first + (r + 1) * bucket, last), d});
  }
  return out;
}

OverlappedGradReduce::OverlappedGradReduce(Comm* dp, size_t padded, size_t bucket)
    : dp_(dp), buckets_(overlap_buckets(padded, dp ? dp->size() : 1, bucket)) {
  IRIS_CHECK(dp != nullptr && dp->size() > 1, "the overlapped gradient reduction needs a DP group of 2 or more ranks");
}

OverlappedGradReduce::~OverlappedGradReduce() {
  // Only an exception leaves reductions in flight, and the job is ending then: freeing an active
  // collective request is erroneous in MPI and waiting could hang, so they are left to the exit.
  for (auto& h : in_flight_) (void)h.release();
}

void OverlappedGradReduce::begin(float* grads) {
  IRIS_CHECK(in_flight_.empty(), "a gradient reduction is still in flight on group {}", dp_->name());
  grads_ = grads;
  next_ = 0;
  last_offset_ = SIZE_MAX;
}

void OverlappedGradReduce::ready_from(size_t offset) {
  IRIS_CHECK(grads_ != nullptr, "ready_from before begin");
  // A larger offset than before would mean the backward changed gradients it had declared final.
  IRIS_CHECK(offset <= last_offset_, "gradients ready from {} after ready from {}: offsets must decrease", offset,
             last_offset_);
  last_offset_ = offset;
  for (; next_ < buckets_.size() && buckets_[next_].begin >= offset; ++next_) {
    const GradBucket& b = buckets_[next_];
    in_flight_.push_back(dp_->ireduce(grads_ + b.begin, b.end - b.begin, b.owner));
  }
}

void OverlappedGradReduce::finish() {
  ready_from(0);
  for (auto& h : in_flight_) h->wait();
  in_flight_.clear();
  grads_ = nullptr;
}

}  // namespace iris
