// Byte and line reading for input files that may be compressed. The compression is chosen by the
// file name: NAME.gz through zlib, NAME.zst through libzstd (multi-frame streams included),
// anything else read as is. Lines end at '\n' (a trailing '\r' is kept; JSON treats it as space).
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace iris::io {

enum class Compression { None, Gzip, Zstd };

// From the last extension: ".gz" → Gzip, ".zst" → Zstd, anything else → None.
Compression compression_for(const std::string& path);
// `path` without a trailing ".gz"/".zst" (so "a.jsonl.gz" → "a.jsonl"), for format detection.
std::string strip_compression_suffix(const std::string& path);

// Sequential decompressing reader. Errors (missing file, corrupt stream, truncated stream) throw
// UserError naming the file.
class CompressedFile {
 public:
  explicit CompressedFile(const std::string& path);
  ~CompressedFile();
  CompressedFile(const CompressedFile&) = delete;
  CompressedFile& operator=(const CompressedFile&) = delete;

  // Reads up to `n` decompressed bytes into `out`; 0 only at the end of the data.
  size_t read(char* out, size_t n);
  // Bytes of the file on disk consumed so far (compressed bytes for .gz/.zst), for progress.
  uint64_t raw_bytes_read() const { return raw_bytes_read_; }
  const std::string& path() const { return path_; }

 private:
  size_t read_zstd(char* out, size_t n);

  std::string path_;
  Compression compression_;
  std::FILE* file_ = nullptr;
  void* gz_ = nullptr;                // gzFile for Gzip
  struct ZstdState;
  std::unique_ptr<ZstdState> zstd_;  // for Zstd
  uint64_t raw_bytes_read_ = 0;
};

// Splits a CompressedFile into lines (without the '\n').
class LineReader {
 public:
  explicit LineReader(const std::string& path) : file_(path) {}
  bool next(std::string& line);  // false at the end of the file
  // Reads everything left as one string.
  std::string read_all();
  uint64_t raw_bytes_read() const { return file_.raw_bytes_read(); }

 private:
  bool fill();

  CompressedFile file_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
};

}  // namespace iris::io
