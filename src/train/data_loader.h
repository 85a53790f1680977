// Pretraining batches from an indexed dataset. The token stream (all documents concatenated, EOS
// between them) is cut into non-overlapping samples of T+1 tokens (inputs and shifted targets share
// T tokens). Sample order is a seeded shuffle per epoch, so the samples of global batch k depend only
// on (seed, k) — never on dp, tp or pp (decision 11). Global batch = micro_batch × grad_accum × dp;
// DP rank d takes the d-th contiguous block of it and cuts that into micro-batches.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/indexed_dataset.h"

namespace iris {

struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> tokens;       // (B, T)
  std::vector<int32_t> targets;      // (B, T)
  std::vector<float> loss_mask;      // (B, T): 1 for tokens in the loss
  std::vector<int32_t> positions;    // (B, T) RoPE positions; empty = 0..T-1 in every row
  std::vector<int32_t> doc;          // (B, T) document of each token for packed rows; empty = one per row
};

class PretrainLoader {
 public:
  PretrainLoader(const std::string& prefix, int seq_len, uint64_t seed, int vocab_size);

  uint64_t num_samples() const { return num_samples_; }
  uint64_t num_tokens() const { return dataset_.num_tokens(); }
  // The global sample index → position of the sample in the token stream (its first token).
  uint64_t sample_start(uint64_t global_sample) const;
  // Fills `out` with samples [first, first + count) of the global order.
  void fill(uint64_t first, int count, Batch& out) const;

 private:
  const std::vector<uint32_t>& epoch_order(uint64_t epoch) const;
  io::IndexedDataset dataset_;
  int T_;
  uint64_t seed_;
  int vocab_size_;
  uint64_t num_samples_;
  mutable uint64_t cached_epoch_ = UINT64_MAX;
  mutable std::vector<uint32_t> order_;
};

}  // namespace iris
