// Training rows from token datasets. A SampleSource serves rows by global sample index; the row of
// index i depends only on (seed, i) — never on dp, tp or pp (docs/design.md decision 11).
// Global batch = micro_batch × grad_accum × dp samples; DP rank d takes the d-th contiguous block
// of it and cuts that into micro-batches (micro_batch_first_sample).
// Pretraining: the token stream of a range of documents (all concatenated, EOS between them) is cut
// into non-overlapping samples of T+1 tokens (inputs and shifted targets share T tokens), in a seeded
// shuffle per epoch.
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

// Rows addressed by global sample index (pretraining windows, SFT rows, a blend of either).
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Rows per epoch (the source repeats, reshuffled, after that many).
  virtual uint64_t num_samples() const = 0;
  // Fills `out` with samples [first, first + count) of the global order.
  virtual void fill(uint64_t first, int count, Batch& out) const = 0;
  // One line for the startup log: what the rows are made of.
  virtual std::string describe() const = 0;
};

// The global sample index of the first row of micro-batch m on DP rank dp_rank, in the step that
// starts at global sample `consumed`.
uint64_t micro_batch_first_sample(uint64_t consumed, int micro_batch, int grad_accum, int dp_rank, int m);

// Documents [begin, end) of a dataset with `total` documents; end = UINT64_MAX means all.
struct DocRange {
  uint64_t begin = 0, end = UINT64_MAX;
};

// The documents of a dataset in use: increasing, disjoint ranges (one range for data.split, many for
// the shuffled subset of data.val_fraction). Default: all documents.
struct DocSelection {
  std::vector<DocRange> runs{DocRange{}};
  DocSelection() = default;
  DocSelection(DocRange range) : runs{range} {}  // NOLINT: a range is a selection
  explicit DocSelection(std::vector<DocRange> ranges) : runs(std::move(ranges)) {}
  // Documents selected out of a dataset with n (ranges clipped to n).
  uint64_t count(uint64_t n) const;
  std::string describe(uint64_t n) const;  // "documents 8..10" or "812 of 1000 documents"
};

class PretrainLoader : public SampleSource {
 public:
  // The token stream is the selected documents' tokens in dataset order, concatenated.
  PretrainLoader(const std::string& prefix, int seq_len, uint64_t seed, int vocab_size, DocSelection docs = {});

  uint64_t num_samples() const override { return num_samples_; }
  uint64_t num_tokens() const { return stream_tokens_; }
  // The global sample index → position of the sample's first token in the dataset's token stream.
  uint64_t sample_start(uint64_t global_sample) const;
  void fill(uint64_t first, int count, Batch& out) const override;
  std::string describe() const override;

 private:
  const std::vector<uint32_t>& epoch_order(uint64_t epoch) const;
  uint64_t stream_offset(uint64_t global_sample) const;  // first token of the sample in the selection's stream
  uint64_t dataset_position(uint64_t stream_pos) const;  // selection stream → dataset token stream
  void read_stream(uint64_t stream_pos, int count, int32_t* out) const;
  std::string prefix_;
  io::IndexedDataset dataset_;
  int T_;
  uint64_t seed_;
  int vocab_size_;
  std::vector<uint64_t> run_begin_, run_end_;  // dataset token ranges of the selected documents (merged)
  std::vector<uint64_t> run_stream_;           // stream position of each range's first token
  uint64_t stream_tokens_ = 0;
  std::string selection_;                      // the selection, for messages
  uint64_t num_samples_;
  mutable uint64_t cached_epoch_ = UINT64_MAX;
  mutable std::vector<uint32_t> order_;
};

// Copies row `row` of `from` into row `to_row` of `to` (same T; positions/doc copied when present).
void copy_row(const Batch& from, int row, Batch& to, int to_row);

}  // namespace iris
