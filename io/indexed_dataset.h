// Token datasets in Megatron-LM's memory-mapped indexed format (megatron/core/datasets/
// indexed_dataset.py), so corpora move between Megatron and Iris unchanged (docs/design.md decision 12).
//   PREFIX.bin  the tokens of every sequence, back to back, little-endian, in the index's dtype
//   PREFIX.idx  "MMIDIDX\0\0" | u64 version = 1 | u8 dtype code | u64 sequence count S |
//               u64 document-index count D+1 | i32 lengths[S] | i64 byte pointers[S] |
//               i64 document indices[D+1] (0, ..., S; document d is sequences [idx[d], idx[d+1]))
// Iris writes one sequence per document; the reader accepts any Megatron dataset whose sequences
// are stored contiguously (which Megatron's builder always does).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace iris::io {

// Megatron's DType codes (the u8 in the .idx header).
enum class IndexedDType : uint8_t {
  U8 = 1, I8 = 2, I16 = 3, I32 = 4, I64 = 5, F64 = 6, F32 = 7, U16 = 8
};

// Megatron's choice: uint16 tokens when the vocabulary fits below 65500, otherwise int32.
IndexedDType token_dtype_for_vocab(int vocab_size);

// Writes PREFIX.bin.tmp and PREFIX.idx.tmp; finalize() makes them PREFIX.bin / PREFIX.idx. A writer
// destroyed before finalize() (an error, an exception) removes its .tmp files, and a pre-existing
// PREFIX.bin/.idx pair stays untouched until the new pair is complete on disk.
class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(std::string prefix, int vocab_size);
  ~IndexedDatasetWriter();
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  // One sequence = one document. Every token must lie in [0, vocab_size).
  void add_document(std::span<const int32_t> tokens);
  // Flushes and fsyncs both files, writes the index, then renames .bin.tmp and last .idx.tmp.
  void finalize();

  uint64_t num_tokens() const { return num_tokens_; }
  uint64_t num_documents() const { return sequence_lengths_.size(); }
  IndexedDType dtype() const { return dtype_; }
  const std::string& prefix() const { return prefix_; }

 private:
  void write_bin(const void* data, size_t bytes);
  void write_index_file(const std::string& path);
  void remove_tmp_files() noexcept;

  std::string prefix_;
  int vocab_size_;
  IndexedDType dtype_;
  std::FILE* bin_ = nullptr;          // PREFIX.bin.tmp while open
  std::vector<int32_t> sequence_lengths_;  // (S,)
  uint64_t num_tokens_ = 0;
  std::vector<uint16_t> narrow_;      // staging for uint16 output
  bool finalized_ = false;
};

// Read-only view of one file mapped into memory; an empty file maps to nothing.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // UserError naming path when it cannot be opened
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// Memory-mapped reader. Both files are validated on open (header, array sizes, pointers against
// lengths, document indices, .bin size), so later reads cannot run off the mapping.
class IndexedDataset {
 public:
  // Throws UserError naming the file when PREFIX.idx or PREFIX.bin is missing, corrupt or truncated.
  static IndexedDataset open(const std::string& prefix);

  size_t num_sequences() const { return num_sequences_; }
  size_t num_documents() const { return num_doc_indices_ - 1; }
  uint64_t num_tokens() const { return num_tokens_; }
  IndexedDType dtype() const { return dtype_; }
  size_t sequence_length(size_t i) const;
  // Global token offset of sequence i's first token.
  uint64_t sequence_offset(size_t i) const;
  // Entry d of the document index (d in [0, num_documents()]): first sequence of document d.
  uint64_t document_index(size_t d) const;

  void read_sequence(size_t i, std::vector<int32_t>& out) const;
  // Treating all sequences concatenated as one token stream: `count` tokens from global `offset`.
  void read_tokens(uint64_t offset, size_t count, int32_t* out) const;  // out: (count,)

 private:
  IndexedDataset() = default;

  std::string prefix_;
  MappedFile idx_, bin_;
  IndexedDType dtype_ = IndexedDType::U16;
  size_t item_size_ = 2;
  size_t num_sequences_ = 0, num_doc_indices_ = 1;
  size_t lengths_at_ = 0, pointers_at_ = 0, doc_indices_at_ = 0;  // byte offsets into the .idx
  uint64_t num_tokens_ = 0;
};

}  // namespace iris::io
