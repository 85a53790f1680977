#include "io/sft_dataset.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/durable_file.h"
#include "src/core/check.h"

namespace iris::io {

namespace {
void write_all(std::FILE* f, const void* data, size_t bytes, const std::string& path) {
  IRIS_USER_CHECK(bytes == 0 || std::fwrite(data, 1, bytes, f) == bytes, "cannot write {}: {}", path,
                  std::strerror(errno));
}
}  // namespace

std::string loss_mask_prefix(const std::string& prefix) { return prefix + "_loss_mask"; }

ByteSequenceWriter::ByteSequenceWriter(std::string prefix) : prefix_(std::move(prefix)) {
  const std::string path = prefix_ + ".bin.tmp";
  bin_ = std::fopen(path.c_str(), "wb");
  IRIS_USER_CHECK(bin_ != nullptr, "cannot create {}: {}", path, std::strerror(errno));
}

ByteSequenceWriter::~ByteSequenceWriter() {
  if (bin_) std::fclose(bin_);
  if (!finalized_) remove_tmp_files();
}

void ByteSequenceWriter::remove_tmp_files() noexcept {
  std::error_code ec;
  std::filesystem::remove(prefix_ + ".bin.tmp", ec);
  std::filesystem::remove(prefix_ + ".idx.tmp", ec);
}

void ByteSequenceWriter::add_sequence(std::span<const uint8_t> values) {
  IRIS_CHECK(!finalized_, "add_sequence after finalize");
  write_all(bin_, values.data(), values.size(), prefix_ + ".bin.tmp");
  lengths_.push_back(static_cast<int32_t>(values.size()));
}

void ByteSequenceWriter::finalize() {
  const std::string bin_tmp = prefix_ + ".bin.tmp", idx_tmp = prefix_ + ".idx.tmp";
  close_durably(bin_, bin_tmp);
  std::FILE* idx = std::fopen(idx_tmp.c_str(), "wb");
  IRIS_USER_CHECK(idx != nullptr, "cannot create {}: {}", idx_tmp, std::strerror(errno));
  // Header and arrays as in indexed_dataset.h: magic, version 1, dtype U8, S, S+1, lengths,
  // byte pointers (1 byte per item), document indices 0..S.
  const char magic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
  const uint64_t version = 1, count = lengths_.size(), doc_count = count + 1;
  const uint8_t dtype = static_cast<uint8_t>(IndexedDType::U8);
  std::vector<int64_t> pointers(count), doc_index(doc_count);
  int64_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    pointers[i] = offset;
    offset += lengths_[i];
  }
  for (size_t d = 0; d < doc_count; ++d) doc_index[d] = static_cast<int64_t>(d);
  write_all(idx, magic, 9, idx_tmp);
  write_all(idx, &version, 8, idx_tmp);
  write_all(idx, &dtype, 1, idx_tmp);
  write_all(idx, &count, 8, idx_tmp);
  write_all(idx, &doc_count, 8, idx_tmp);
  write_all(idx, lengths_.data(), 4 * count, idx_tmp);
  write_all(idx, pointers.data(), 8 * count, idx_tmp);
  write_all(idx, doc_index.data(), 8 * doc_count, idx_tmp);
  close_durably(idx, idx_tmp);
  rename_durably(bin_tmp, prefix_ + ".bin");
  rename_durably(idx_tmp, prefix_ + ".idx");  // last: a finished .idx marks a finished dataset
  finalized_ = true;
}

void SftDatasetWriter::add_sample(std::span<const int32_t> tokens, std::span<const uint8_t> mask) {
  IRIS_CHECK(tokens.size() == mask.size(), "SFT sample: {} tokens but {} mask values", tokens.size(), mask.size());
  tokens_.add_document(tokens);
  mask_.add_sequence(mask);
}

void SftDatasetWriter::finalize() {
  mask_.finalize();
  tokens_.finalize();
}

SftDataset open_sft_dataset(const std::string& prefix) {
  SftDataset ds{IndexedDataset::open(prefix), IndexedDataset::open(loss_mask_prefix(prefix))};
  const std::string mask = loss_mask_prefix(prefix);
  IRIS_USER_CHECK(ds.loss_mask.dtype() == IndexedDType::U8, "{}.idx: a loss mask must be uint8 (dtype code 1)", mask);
  IRIS_USER_CHECK(ds.loss_mask.num_sequences() == ds.tokens.num_sequences(),
                  "{} has {} sequences but {} has {}: they come from different runs; re-run iris-tokenize --sft",
                  mask, ds.loss_mask.num_sequences(), prefix, ds.tokens.num_sequences());
  std::vector<int32_t> values;
  for (size_t i = 0; i < ds.tokens.num_sequences(); ++i) {
    IRIS_USER_CHECK(ds.tokens.sequence_length(i) == ds.loss_mask.sequence_length(i),
                    "sequence {}: {} tokens in {} but {} mask values in {}; re-run iris-tokenize --sft", i,
                    ds.tokens.sequence_length(i), prefix, ds.loss_mask.sequence_length(i), mask);
  }
  for (size_t i = 0; i < ds.loss_mask.num_sequences(); ++i) {
    ds.loss_mask.read_sequence(i, values);
    for (int32_t v : values) IRIS_USER_CHECK(v == 0 || v == 1, "{}: sequence {} holds mask value {}", mask, i, v);
  }
  return ds;
}

}  // namespace iris::io
