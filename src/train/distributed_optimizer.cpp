#include "src/train/distributed_optimizer.h"

#include <algorithm>
#include <cstring>

#include "src/core/check.h"

namespace iris {

DistributedOptimizer::DistributedOptimizer(const ParamTable& table, AdamWConfig config, Comm* dp,
                                           size_t bucket_elements, bool overlap)
    : dp_(dp) {
  dp_size_ = dp ? dp->size() : 1;
  dp_rank_ = dp ? dp->rank() : 0;
  const size_t P = table.total_numel();
  padded_ = (P + dp_size_ - 1) / dp_size_ * dp_size_;
  const size_t shard = padded_ / dp_size_;
  shard_begin_ = dp_rank_ * shard;
  shard_end_ = shard_begin_ + shard;
  bucket_ = std::max<size_t>(1, std::min(bucket_elements, shard));
  // AdamW only touches real parameters: the padding tail past P has no tensor and no state.
  adam_ = std::make_unique<AdamW>(table, config, std::min(shard_begin_, P), std::min(shard_end_, P));
  if (dp_size_ > 1 && overlap) {
    overlap_ = std::make_unique<OverlappedGradReduce>(dp, padded_, bucket_);  // in place: no staging
  } else if (dp_size_ > 1) {
    send_.resize(bucket_ * dp_size_);
    recv_.resize(bucket_);
  }
}

void DistributedOptimizer::begin_grad_reduce(float* grads) {
  if (overlap_) overlap_->begin(grads);
}

GradsReady DistributedOptimizer::grads_ready() {
  if (!overlap_) return nullptr;
  return [this](size_t offset) { overlap_->ready_from(offset); };
}

size_t DistributedOptimizer::grad_reduce_calls() const {
  if (dp_size_ == 1) return 0;
  if (overlap_) return overlap_->buckets().size();
  const size_t shard = padded_ / dp_size_;
  return (shard + bucket_ - 1) / bucket_;
}

void DistributedOptimizer::finish_grad_reduce(float* grads) {
  if (overlap_)
    overlap_->finish();
  else
    reduce_scatter_grads(grads);
}

void DistributedOptimizer::reduce_scatter_grads(float* grads) {
  if (dp_size_ == 1) return;
  const size_t shard = padded_ / dp_size_;
  for (size_t off = 0; off < shard; off += bucket_) {
    const size_t n = std::min(bucket_, shard - off);
    for (int r = 0; r < dp_size_; ++r) std::memcpy(send_.data() + r * n, grads + r * shard + off, n * sizeof(float));
    dp_->reduce_scatter(send_.data(), recv_.data(), n);
    std::memcpy(grads + shard_begin_ + off, recv_.data(), n * sizeof(float));
  }
}

void DistributedOptimizer::step(float* params, const float* grads, double lr, int step, float grad_scale) {
  adam_->update(params, grads, lr, step, grad_scale);
  if (dp_size_ > 1) dp_->all_gather(params + shard_begin_, params, padded_ / dp_size_);
}

std::vector<std::pair<size_t, size_t>> grad_norm_ranges(const ParamTable& table, const Topology& topo,
                                                        size_t shard_begin, size_t shard_end) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const auto& e : table.entries()) {
    const bool duplicate = (table.replicated(e) && topo.tp_rank != 0) ||
                           (e.name == "model.embed_tokens.weight" && topo.pp > 1 && !topo.is_first_stage());
    if (duplicate) continue;
    const size_t b = std::max(e.offset, shard_begin), f = std::min(e.offset + e.numel, shard_end);
    if (b >= f) continue;
    if (!ranges.empty() && ranges.back().second == b)
      ranges.back().second = f;
    else
      ranges.emplace_back(b, f);
  }
  return ranges;
}

}  // namespace iris
