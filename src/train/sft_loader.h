// Supervised fine-tuning batches from an SFT dataset (io/sft_dataset.h: tokens + per-token loss mask,
// one sequence per sample). The sample order is a seeded shuffle per epoch, as for pretraining, so
// the rows of global batch k depend only on (seed, k). Each row holds T+1 tokens (inputs and shifted
// targets):
//   packing off: one sample per row, truncated to T+1 tokens, padded with token 0 and mask 0;
//   packing on:  consecutive samples of the order packed greedily into rows (a sample that does not
//                fit starts the next row; one longer than a row is truncated). RoPE positions restart
//                at each sample and the document ids keep attention inside each sample. The target
//                after a sample's last token is the next sample's BOS, whose mask is 0, so nothing
//                crosses a boundary in the loss either.
// loss_mask[t] is the mask of the target token (mask of token t+1 of the row).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/sft_dataset.h"
#include "src/train/data_loader.h"

namespace iris {

// The global sample index of SampleSource is the row index here (a row may hold several samples).
class SftLoader : public SampleSource {
 public:
  // docs: the samples (one document each) in use, e.g. the training part of a data.split.
  SftLoader(const std::string& prefix, int seq_len, uint64_t seed, int vocab_size, bool packing, DocSelection docs = {});

  uint64_t num_samples() const override { return rows_per_epoch_; }
  uint64_t num_sft_samples() const { return lengths_.size(); }
  uint64_t rows_per_epoch() const { return rows_per_epoch_; }
  // Fills `out` with rows [first, first + count) of the global row order.
  void fill(uint64_t first_row, int count, Batch& out) const override;
  std::string describe() const override;

 private:
  struct Piece { uint32_t sample; uint32_t length; };  // tokens of `sample` placed in a row
  void plan_epoch(uint64_t epoch) const;               // packs epoch `epoch` into rows_
  std::string prefix_;
  io::SftDataset data_;
  std::vector<uint64_t> samples_;   // dataset index of each sample in use (lengths_[i] is samples_[i]'s)
  int T_;
  uint64_t seed_;
  int vocab_size_;
  bool packing_;
  std::vector<uint32_t> lengths_;   // tokens per sample
  uint64_t rows_per_epoch_ = 0;
  mutable uint64_t planned_epoch_ = UINT64_MAX;
  mutable std::vector<std::vector<Piece>> rows_;  // the rows of the planned epoch
};

}  // namespace iris
