#include "io/tokenize/compressed_input.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "src/core/check.h"

namespace iris::io {

namespace {
bool ends_with(const std::string& s, std::string_view suffix) { return s.size() >= suffix.size() &&
    s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0; }
constexpr size_t kChunkBytes = 1 << 20;
}  // namespace

Compression compression_for(const std::string& path) {
  if (ends_with(path, ".gz")) return Compression::Gzip;
  if (ends_with(path, ".zst")) return Compression::Zstd;
  return Compression::None;
}

std::string strip_compression_suffix(const std::string& path) {
  switch (compression_for(path)) {
    case Compression::Gzip: return path.substr(0, path.size() - 3);
    case Compression::Zstd: return path.substr(0, path.size() - 4);
    default: return path;
  }
}

struct CompressedFile::ZstdState {
  ZSTD_DStream* stream = nullptr;
  std::vector<char> in;          // compressed bytes read from the file
  ZSTD_inBuffer input{nullptr, 0, 0};
  size_t last_result = 0;        // 0 when the last frame ended cleanly
  bool file_done = false;
  ~ZstdState() { ZSTD_freeDStream(stream); }
};

CompressedFile::CompressedFile(const std::string& path) : path_(path), compression_(compression_for(path)) {
  if (compression_ == Compression::Gzip) {
    gzFile gz = gzopen(path.c_str(), "rb");
    IRIS_USER_CHECK(gz != nullptr, "cannot read {}: {}", path, std::strerror(errno));
    gzbuffer(gz, 1 << 17);
    gz_ = gz;
    return;
  }
  file_ = std::fopen(path.c_str(), "rb");
  IRIS_USER_CHECK(file_ != nullptr, "cannot read {}: {}", path, std::strerror(errno));
  if (compression_ == Compression::Zstd) {
    zstd_ = std::make_unique<ZstdState>();
    zstd_->stream = ZSTD_createDStream();
    IRIS_CHECK(zstd_->stream != nullptr, "ZSTD_createDStream failed");
    ZSTD_initDStream(zstd_->stream);
    zstd_->in.resize(ZSTD_DStreamInSize());
  }
}

CompressedFile::~CompressedFile() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
  if (file_) std::fclose(file_);
}

size_t CompressedFile::read(char* out, size_t n) {
  if (n == 0) return 0;
  switch (compression_) {
    case Compression::None: {
      const size_t got = std::fread(out, 1, n, file_);
      IRIS_USER_CHECK(got > 0 || !std::ferror(file_), "cannot read {}: {}", path_, std::strerror(errno));
      raw_bytes_read_ += got;
      return got;
    }
    case Compression::Gzip: {
      gzFile gz = static_cast<gzFile>(gz_);
      const int got = gzread(gz, out, static_cast<unsigned>(std::min<size_t>(n, 1u << 30)));
      int code = Z_OK;
      const char* message = gzerror(gz, &code);
      // Z_BUF_ERROR at the end means the gzip stream was cut short.
      IRIS_USER_CHECK(got >= 0 && (code == Z_OK || code == Z_STREAM_END),
                      "{}: corrupt or truncated gzip data ({})", path_, message ? message : "unknown zlib error");
      raw_bytes_read_ = static_cast<uint64_t>(gzoffset(gz));
      return static_cast<size_t>(got);
    }
    case Compression::Zstd: return read_zstd(out, n);
  }
  return 0;
}

size_t CompressedFile::read_zstd(char* out, size_t n) {
  ZstdState& z = *zstd_;
  ZSTD_outBuffer output{out, n, 0};
  while (output.pos == 0) {
    if (z.input.pos == z.input.size) {
      if (z.file_done) break;
      const size_t got = std::fread(z.in.data(), 1, z.in.size(), file_);
      IRIS_USER_CHECK(got > 0 || !std::ferror(file_), "cannot read {}: {}", path_, std::strerror(errno));
      raw_bytes_read_ += got;
      if (got == 0) {
        z.file_done = true;
        break;
      }
      z.input = ZSTD_inBuffer{z.in.data(), got, 0};
    }
    const size_t result = ZSTD_decompressStream(z.stream, &output, &z.input);
    IRIS_USER_CHECK(!ZSTD_isError(result), "{}: corrupt zstd data ({})", path_, ZSTD_getErrorName(result));
    z.last_result = result;
  }
  if (output.pos == 0) {
    IRIS_USER_CHECK(z.last_result == 0, "{}: truncated zstd data (the last frame is incomplete)", path_);
  }
  return output.pos;
}

bool LineReader::fill() {
  if (eof_) return false;
  if (pos_ > 0) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  const size_t old = buffer_.size();
  buffer_.resize(old + kChunkBytes);
  const size_t got = file_.read(buffer_.data() + old, kChunkBytes);
  buffer_.resize(old + got);
  if (got == 0) eof_ = true;
  return got > 0;
}

bool LineReader::next(std::string& line) {
  size_t scanned = 0;  // bytes after pos_ already known to hold no '\n'
  for (;;) {
    const size_t nl = buffer_.find('\n', pos_ + scanned);
    if (nl != std::string::npos) {
      line.assign(buffer_, pos_, nl - pos_);
      pos_ = nl + 1;
      return true;
    }
    scanned = buffer_.size() - pos_;
    if (!fill()) {  // fill() moves the unread bytes to the front (pos_ = 0)
      if (pos_ >= buffer_.size()) return false;
      line.assign(buffer_, pos_, std::string::npos);  // last line without '\n'
      pos_ = buffer_.size();
      return true;
    }
  }
}

std::string LineReader::read_all() {
  while (fill()) {
  }
  std::string rest = buffer_.substr(pos_);
  pos_ = buffer_.size();
  return rest;
}

}  // namespace iris::io
