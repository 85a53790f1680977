#include "src/train/zero1_cpu_optimizer.h"

#include <algorithm>
#include <cstring>

#include "src/core/check.h"

namespace iris {

Zero1CpuOptimizer::Zero1CpuOptimizer(const ParamTable& table, AdamWConfig config, Comm* dp,
                                           size_t bucket_elements, bool overlap)
    : dp_(dp),
      layout_(Zero1Layout::make(table, dp ? dp->size() : 1, dp ? dp->rank() : 0, bucket_elements, overlap)),
      adam_(std::make_unique<AdamW>(table, config, layout_.adam_begin, layout_.adam_end)),
      reduce_(layout_, dp) {
  if (layout_.dp_size > 1 && !layout_.overlap) {
    send_.resize(layout_.bucket * layout_.dp_size);
    recv_.resize(layout_.bucket);
  }
}

void Zero1CpuOptimizer::finish_grad_reduce(float* grads) {
  reduce_.finish([&] { reduce_scatter_grads(grads); });
}

void Zero1CpuOptimizer::reduce_scatter_grads(float* grads) {
  const int dp = layout_.dp_size;
  if (dp == 1) return;
  const size_t shard = layout_.shard(), bucket = layout_.bucket;
  for (size_t off = 0; off < shard; off += bucket) {
    const size_t n = std::min(bucket, shard - off);
    for (int r = 0; r < dp; ++r) std::memcpy(send_.data() + r * n, grads + r * shard + off, n * sizeof(float));
    dp_->reduce_scatter(send_.data(), recv_.data(), n);
    std::memcpy(grads + layout_.shard_begin + off, recv_.data(), n * sizeof(float));
  }
}

void Zero1CpuOptimizer::step(float* params, const float* grads, double lr, int step, float grad_scale) {
  adam_->update(params, grads, lr, step, grad_scale);
  if (layout_.dp_size > 1) dp_->all_gather(params + layout_.shard_begin, params, layout_.shard());
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
