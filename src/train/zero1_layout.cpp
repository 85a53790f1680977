#include "src/train/zero1_layout.h"

#include <algorithm>

#include "src/core/check.h"

namespace iris {

Zero1Layout Zero1Layout::make(const ParamTable& table, int dp_size, int dp_rank, size_t bucket_elements, bool overlap) {
  IRIS_CHECK(dp_size > 0 && dp_rank >= 0 && dp_rank < dp_size, "ZeRO-1 layout: DP rank {} of {}", dp_rank, dp_size);
  Zero1Layout l;
  l.dp_size = dp_size;
  l.dp_rank = dp_rank;
  const size_t P = table.total_numel();
  l.padded = (P + dp_size - 1) / dp_size * dp_size;
  const size_t shard = l.padded / dp_size;
  l.shard_begin = dp_rank * shard;
  l.shard_end = l.shard_begin + shard;
  l.bucket = std::max<size_t>(1, std::min(bucket_elements, shard));
  l.adam_begin = std::min(l.shard_begin, P);  // the padding tail past P has no tensor and no state
  l.adam_end = std::min(l.shard_end, P);
  l.overlap = overlap && dp_size > 1;
  l.segments = adamw_segments(table, l.adam_begin, l.adam_end);
  return l;
}

size_t Zero1Layout::grad_reduce_calls() const {
  if (dp_size == 1) return 0;
  if (overlap) return overlap_buckets(padded, dp_size, bucket).size();
  return (shard() + bucket - 1) / bucket;
}

Zero1GradReduce::Zero1GradReduce(const Zero1Layout& layout, Comm* dp) {
  IRIS_CHECK(layout.dp_size == 1 || (dp != nullptr && dp->size() == layout.dp_size),
             "the DP group does not match the ZeRO-1 layout's {} ranks", layout.dp_size);
  if (layout.overlap) overlap_ = std::make_unique<OverlappedGradReduce>(dp, layout.padded, layout.bucket);  // in place
}

void Zero1GradReduce::begin(float* grads) {
  if (overlap_) overlap_->begin(grads);
}

GradsReady Zero1GradReduce::grads_ready() {
  if (!overlap_) return nullptr;
  return [this](size_t offset) { overlap_->ready_from(offset); };
}

void Zero1GradReduce::finish(const std::function<void()>& reduce_scatter) {
  if (overlap_)
    overlap_->finish();
  else
    reduce_scatter();
}

}  // namespace iris
