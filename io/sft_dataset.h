// SFT datasets on disk: two Megatron indexed datasets (MMIDIDX v1, see indexed_dataset.h) side by side.
//
//   PREFIX.bin / PREFIX.idx                      the token ids of every sample, one sequence per
//                                                sample (uint16 below 65,500 pieces, else int32),
//                                                exactly as iris-tokenize writes pretraining data.
//   PREFIX_loss_mask.bin / PREFIX_loss_mask.idx  one uint8 per token (dtype code 1), 0 or 1, with
//                                                the same sequence count and the same sequence
//                                                lengths as the tokens.
//
// mask[i] = 1 means token i is a training target: the loss at position i-1 (which predicts token
// i) counts. The answer tokens and the EOS (or end-of-turn token) closing each answer are 1; the
// prompt, the template text and BOS are 0 (prompts are 1 too with --train-on-inputs; BOS never).
// Both datasets are written as .tmp files and renamed when complete: the mask pair first, the token
// .idx last, so a complete PREFIX.idx means its mask is complete too. A reader must still check
// that the two agree (open_sft_dataset does), because a crash between the renames can leave a new
// mask beside an older token dataset.
#pragma once
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "io/indexed_dataset.h"

namespace iris::io {

std::string loss_mask_prefix(const std::string& prefix);  // PREFIX + "_loss_mask"

// Writes a uint8 Megatron indexed dataset (PREFIX.bin/.idx through .tmp + rename, like
// IndexedDatasetWriter, whose dtype is fixed by the vocabulary).
class ByteSequenceWriter {
 public:
  explicit ByteSequenceWriter(std::string prefix);
  ~ByteSequenceWriter();
  ByteSequenceWriter(const ByteSequenceWriter&) = delete;
  ByteSequenceWriter& operator=(const ByteSequenceWriter&) = delete;

  void add_sequence(std::span<const uint8_t> values);
  void finalize();
  uint64_t num_sequences() const { return lengths_.size(); }

 private:
  void remove_tmp_files() noexcept;

  std::string prefix_;
  std::FILE* bin_ = nullptr;
  std::vector<int32_t> lengths_;  // (S,)
  bool finalized_ = false;
};

// Tokens + loss mask, written together.
class SftDatasetWriter {
 public:
  SftDatasetWriter(const std::string& prefix, int vocab_size) : tokens_(prefix, vocab_size), mask_(loss_mask_prefix(prefix)) {}
  // tokens and mask have the same length.
  void add_sample(std::span<const int32_t> tokens, std::span<const uint8_t> mask);
  void finalize();  // mask first, tokens last
  const IndexedDatasetWriter& tokens() const { return tokens_; }

 private:
  IndexedDatasetWriter tokens_;
  ByteSequenceWriter mask_;
};

struct SftDataset {
  IndexedDataset tokens, loss_mask;
};
// Opens both and checks they match (uint8 mask, same sequence lengths, values 0/1); UserError naming
// the files otherwise.
SftDataset open_sft_dataset(const std::string& prefix);

}  // namespace iris::io
