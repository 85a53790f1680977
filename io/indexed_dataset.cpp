#include "io/indexed_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "io/durable_file.h"
#include "src/core/check.h"

namespace iris::io {

static_assert(std::endian::native == std::endian::little, "the indexed format is little-endian");

namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr uint64_t kVersion = 1;
constexpr size_t kHeaderBytes = 9 + 8 + 1 + 8 + 8;  // magic, version, dtype, S, D+1

std::string errno_text() { return std::strerror(errno); }

// Item size of a token dtype the reader can turn into int32 tokens; 0 for anything else.
size_t token_item_size(uint8_t code) {
  switch (static_cast<IndexedDType>(code)) {
    case IndexedDType::U8: case IndexedDType::I8: return 1;
    case IndexedDType::I16: case IndexedDType::U16: return 2;
    case IndexedDType::I32: return 4;
    case IndexedDType::I64: return 8;
    default: return 0;
  }
}

template <typename T>
T load(const unsigned char* p) {  // the .idx arrays start at byte 34, so reads are unaligned
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void widen(const unsigned char* src, size_t count, int32_t* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<int32_t>(load<T>(src + i * sizeof(T)));
}



}  // namespace

IndexedDType token_dtype_for_vocab(int vocab_size) {
  return vocab_size < 65500 ? IndexedDType::U16 : IndexedDType::I32;
}

// ---- writer ----

IndexedDatasetWriter::IndexedDatasetWriter(std::string prefix, int vocab_size)
    : prefix_(std::move(prefix)), vocab_size_(vocab_size), dtype_(token_dtype_for_vocab(vocab_size)) {
  IRIS_USER_CHECK(vocab_size > 0, "vocabulary size must be positive to write {}.bin, got {}", prefix_, vocab_size);
  const std::string bin_tmp = prefix_ + ".bin.tmp";
  bin_ = std::fopen(bin_tmp.c_str(), "wb");
  IRIS_USER_CHECK(bin_ != nullptr, "cannot create {}: {}", bin_tmp, errno_text());
  std::setvbuf(bin_, nullptr, _IOFBF, 1 << 20);
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (bin_ != nullptr) std::fclose(bin_);
  if (!finalized_) remove_tmp_files();
}

void IndexedDatasetWriter::remove_tmp_files() noexcept {
  std::error_code ignored;
  std::filesystem::remove(prefix_ + ".bin.tmp", ignored);
  std::filesystem::remove(prefix_ + ".idx.tmp", ignored);
}

void IndexedDatasetWriter::write_bin(const void* data, size_t bytes) {
  if (bytes == 0) return;
  IRIS_USER_CHECK(std::fwrite(data, 1, bytes, bin_) == bytes, "cannot write {}.bin.tmp: {}", prefix_, errno_text());
}

void IndexedDatasetWriter::add_document(std::span<const int32_t> tokens) {
  IRIS_CHECK(!finalized_ && bin_ != nullptr, "add_document after finalize on {}", prefix_);
  IRIS_USER_CHECK(tokens.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                  "document {} has {} tokens; the indexed format stores lengths as int32, split the document",
                  sequence_lengths_.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    IRIS_USER_CHECK(tokens[i] >= 0 && tokens[i] < vocab_size_,
                    "token {} at position {} of document {} is outside the vocabulary [0, {}) of {}",
                    tokens[i], i, sequence_lengths_.size(), vocab_size_, prefix_);
  }
  if (dtype_ == IndexedDType::U16) {
    narrow_.assign(tokens.begin(), tokens.end());  // in range: vocab < 65500
    write_bin(narrow_.data(), narrow_.size() * sizeof(uint16_t));
  } else {
    write_bin(tokens.data(), tokens.size_bytes());
  }
  sequence_lengths_.push_back(static_cast<int32_t>(tokens.size()));
  num_tokens_ += tokens.size();
}

void IndexedDatasetWriter::write_index_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  IRIS_USER_CHECK(f != nullptr, "cannot create {}: {}", path, errno_text());
  const uint64_t S = sequence_lengths_.size();
  const uint64_t item_size = dtype_ == IndexedDType::U16 ? 2 : 4;
  std::vector<int64_t> pointers(S);     // (S,) byte offset of each sequence in the .bin
  std::vector<int64_t> doc_indices(S + 1);  // (S+1,) one sequence per document
  int64_t pointer = 0;
  for (uint64_t i = 0; i < S; ++i) {
    pointers[i] = pointer;
    pointer += static_cast<int64_t>(sequence_lengths_[i] * item_size);
    doc_indices[i] = static_cast<int64_t>(i);
  }
  doc_indices[S] = static_cast<int64_t>(S);
  const uint8_t code = static_cast<uint8_t>(dtype_);
  const uint64_t doc_index_count = S + 1;
  bool ok = std::fwrite(kMagic, 1, sizeof(kMagic), f) == sizeof(kMagic) &&
            std::fwrite(&kVersion, 8, 1, f) == 1 && std::fwrite(&code, 1, 1, f) == 1 &&
            std::fwrite(&S, 8, 1, f) == 1 && std::fwrite(&doc_index_count, 8, 1, f) == 1 &&
            std::fwrite(sequence_lengths_.data(), 4, S, f) == S &&
            std::fwrite(pointers.data(), 8, S, f) == S &&
            std::fwrite(doc_indices.data(), 8, S + 1, f) == S + 1;
  if (!ok) {
    std::string why = errno_text();
    std::fclose(f);
    IRIS_USER_CHECK(false, "cannot write {}: {}", path, why);
  }
  close_durably(f, path);
}

void IndexedDatasetWriter::finalize() {
  IRIS_CHECK(!finalized_ && bin_ != nullptr, "finalize called twice on {}", prefix_);
  const std::string bin = prefix_ + ".bin", idx = prefix_ + ".idx";
  close_durably(bin_, bin + ".tmp");
  write_index_file(idx + ".tmp");
  // Both new files are complete on disk. Drop the old index first so an old .idx never pairs with
  // the new .bin; the .idx is renamed last because its presence is what marks a finished dataset.
  std::error_code ec;
  std::filesystem::remove(idx, ec);
  IRIS_USER_CHECK(!ec, "cannot replace {}: {}", idx, ec.message());
  std::filesystem::rename(bin + ".tmp", bin, ec);
  IRIS_USER_CHECK(!ec, "cannot rename {}.tmp to {}: {}", bin, bin, ec.message());
  std::filesystem::rename(idx + ".tmp", idx, ec);
  IRIS_USER_CHECK(!ec, "cannot rename {}.tmp to {}: {}", idx, idx, ec.message());
  fsync_directory(std::filesystem::path(idx).parent_path());
  finalized_ = true;
}

// ---- mapped file ----

MappedFile::MappedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  IRIS_USER_CHECK(fd >= 0, "cannot open {}: {}", path, errno_text());
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    std::string why = stat_ok ? "not a regular file" : errno_text();
    ::close(fd);
    IRIS_USER_CHECK(false, "cannot read {}: {}", path, why);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      std::string why = errno_text();
      ::close(fd);
      IRIS_USER_CHECK(false, "cannot memory-map {}: {}", path, why);
    }
    data_ = static_cast<const unsigned char*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

// ---- reader ----

IndexedDataset IndexedDataset::open(const std::string& prefix) {
  const std::string idx_path = prefix + ".idx", bin_path = prefix + ".bin";
  const bool has_suffix = prefix.ends_with(".bin") || prefix.ends_with(".idx");
  IRIS_USER_CHECK(std::filesystem::exists(idx_path),
                  "token dataset index {} not found (a dataset PREFIX names PREFIX.bin + PREFIX.idx{}; make one "
                  "with iris-tokenize)", idx_path, has_suffix ? ", so give the prefix without .bin/.idx" : "");
  IRIS_USER_CHECK(std::filesystem::exists(bin_path), "token dataset data file {} not found (its index {} exists)",
                  bin_path, idx_path);
  IndexedDataset ds;
  ds.prefix_ = prefix;
  ds.idx_ = MappedFile(idx_path);
  const unsigned char* p = ds.idx_.data();
  const size_t size = ds.idx_.size();

  IRIS_USER_CHECK(size >= kHeaderBytes, "{} is truncated: {} bytes, shorter than the {}-byte header",
                  idx_path, size, kHeaderBytes);
  IRIS_USER_CHECK(std::memcmp(p, kMagic, sizeof(kMagic)) == 0,
                  "{} is not a Megatron indexed dataset index (bad magic; expected MMIDIDX)", idx_path);
  const uint64_t version = load<uint64_t>(p + 9);
  IRIS_USER_CHECK(version == kVersion, "{} has index version {}; only version 1 is supported", idx_path, version);
  const uint8_t code = p[17];
  ds.item_size_ = token_item_size(code);
  IRIS_USER_CHECK(ds.item_size_ != 0, "{} has dtype code {}, which is not an integer token type", idx_path, code);
  ds.dtype_ = static_cast<IndexedDType>(code);
  const uint64_t S = load<uint64_t>(p + 18), D1 = load<uint64_t>(p + 26);
  IRIS_USER_CHECK(D1 >= 1, "{} is corrupt: its document index is empty (needs at least the leading 0)", idx_path);
  // Guard the size arithmetic against absurd counts from a corrupt header before multiplying.
  IRIS_USER_CHECK(S <= size / 12 && D1 <= size / 8,
                  "{} is truncated or corrupt: header claims {} sequences and {} document indices but the file "
                  "has {} bytes", idx_path, S, D1, size);
  const uint64_t expected = kHeaderBytes + 12 * S + 8 * D1;
  // Megatron's multimodal datasets append one int8 mode per sequence; they read fine as tokens.
  IRIS_USER_CHECK(size == expected || size == expected + S,
                  "{} is {}: header claims {} sequences and {} document indices ({} bytes) but the file has {} bytes",
                  idx_path, size < expected ? "truncated" : "corrupt", S, D1, expected, size);
  ds.num_sequences_ = S;
  ds.num_doc_indices_ = D1;
  ds.lengths_at_ = kHeaderBytes;
  ds.pointers_at_ = kHeaderBytes + 4 * S;
  ds.doc_indices_at_ = kHeaderBytes + 12 * S;

  // Sequences must tile the .bin in order, which makes the token stream a plain array.
  uint64_t tokens = 0;
  for (uint64_t i = 0; i < S; ++i) {
    const int32_t length = load<int32_t>(p + ds.lengths_at_ + 4 * i);
    const int64_t pointer = load<int64_t>(p + ds.pointers_at_ + 8 * i);
    IRIS_USER_CHECK(length >= 0, "{} is corrupt: sequence {} has negative length {}", idx_path, i, length);
    IRIS_USER_CHECK(static_cast<uint64_t>(pointer) == tokens * ds.item_size_,
                    "{} is corrupt or not contiguous: sequence {} starts at byte {}, expected {}", idx_path, i,
                    pointer, tokens * ds.item_size_);
    tokens += static_cast<uint64_t>(length);
  }
  ds.num_tokens_ = tokens;
  int64_t previous = 0;
  for (uint64_t d = 0; d < D1; ++d) {
    const int64_t v = load<int64_t>(p + ds.doc_indices_at_ + 8 * d);
    IRIS_USER_CHECK((d == 0 ? v == 0 : v >= previous) && static_cast<uint64_t>(v) <= S,
                    "{} is corrupt: document index entry {} is {} (entries must rise from 0 to {})", idx_path, d, v,
                    S);
    previous = v;
  }
  IRIS_USER_CHECK(static_cast<uint64_t>(previous) == S,
                  "{} is corrupt: the document index ends at {} but there are {} sequences", idx_path, previous, S);

  ds.bin_ = MappedFile(bin_path);
  IRIS_USER_CHECK(ds.bin_.size() == tokens * ds.item_size_,
                  "{} has {} bytes but {} describes {} tokens ({} bytes); the .bin is {} or the pair comes from "
                  "different runs", bin_path, ds.bin_.size(), idx_path, tokens, tokens * ds.item_size_,
                  ds.bin_.size() < tokens * ds.item_size_ ? "truncated" : "too long");
  return ds;
}

size_t IndexedDataset::sequence_length(size_t i) const {
  IRIS_CHECK(i < num_sequences_, "sequence {} out of range ({} sequences in {})", i, num_sequences_, prefix_);
  return static_cast<size_t>(load<int32_t>(idx_.data() + lengths_at_ + 4 * i));
}

uint64_t IndexedDataset::sequence_offset(size_t i) const {
  IRIS_CHECK(i < num_sequences_, "sequence {} out of range ({} sequences in {})", i, num_sequences_, prefix_);
  return static_cast<uint64_t>(load<int64_t>(idx_.data() + pointers_at_ + 8 * i)) / item_size_;
}

uint64_t IndexedDataset::document_index(size_t d) const {
  IRIS_CHECK(d < num_doc_indices_, "document index entry {} out of range ({} entries in {})", d,
             num_doc_indices_, prefix_);
  return static_cast<uint64_t>(load<int64_t>(idx_.data() + doc_indices_at_ + 8 * d));
}

void IndexedDataset::read_sequence(size_t i, std::vector<int32_t>& out) const {
  out.resize(sequence_length(i));
  read_tokens(sequence_offset(i), out.size(), out.data());
}

void IndexedDataset::read_tokens(uint64_t offset, size_t count, int32_t* out) const {
  IRIS_CHECK(offset <= num_tokens_ && count <= num_tokens_ - offset,
             "tokens [{}, {}) out of range ({} tokens in {})", offset, offset + count, num_tokens_, prefix_);
  if (count == 0) return;
  const unsigned char* src = bin_.data() + offset * item_size_;
  switch (dtype_) {
    case IndexedDType::U16: widen<uint16_t>(src, count, out); break;
    case IndexedDType::I32: std::memcpy(out, src, count * sizeof(int32_t)); break;
    case IndexedDType::U8: widen<uint8_t>(src, count, out); break;
    case IndexedDType::I8: widen<int8_t>(src, count, out); break;
    case IndexedDType::I16: widen<int16_t>(src, count, out); break;
    case IndexedDType::I64: widen<int64_t>(src, count, out); break;
    default: IRIS_CHECK(false, "unreachable dtype {}", static_cast<int>(dtype_));
  }
}

}  // namespace iris::io
