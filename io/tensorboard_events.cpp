#include "io/tensorboard_events.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "src/core/check.h"

namespace fs = std::filesystem;

namespace iris::io {
namespace {

// Byte-at-a-time table for the reflected Castagnoli polynomial 0x82f63b78.
const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Protobuf wire format: a key is (field << 3 | wire type); 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
void put_varint(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, int wire_type) { put_varint(out, static_cast<uint64_t>(field << 3 | wire_type)); }
void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}
template <typename T>
void put_fixed(std::string& out, int field, T value) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  put_key(out, field, sizeof(T) == 8 ? 1 : 5);
  put_le(out, bits, sizeof(T));
}

// An Event's wall_time and step, then its one `what` field (already encoded).
std::string event(double wall_time, int64_t step, const std::string& what) {
  std::string e;
  put_fixed(e, 1, wall_time);
  if (step != 0) {
    put_key(e, 2, 0);
    put_varint(e, static_cast<uint64_t>(step));
  }
  return e + what;
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  const auto& table = crc32c_table();
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t c = crc32c(bytes);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TensorBoardWriter::TensorBoardWriter(const fs::path& dir, int64_t resumed_at) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  IRIS_USER_CHECK(!ec, "{}: cannot create the TensorBoard directory: {}", dir.string(), ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  const double now = unix_time_now();
  path_ = dir / fmt::format("events.out.tfevents.{:010d}.{}.{}.iris", static_cast<long long>(now), host, getpid());
  file_ = std::fopen(path_.c_str(), "wb");
  IRIS_USER_CHECK(file_ != nullptr, "{}: cannot create the TensorBoard event file: {}", path_.string(),
                  std::strerror(errno));
  std::string version;
  put_bytes(version, 3, "brain.Event:2");
  write_record(event(now, 0, version));
  if (resumed_at > 0) {
    std::string session_log, start;
    put_key(session_log, 1, 0);
    put_varint(session_log, 1);  // SessionLog.START
    put_bytes(start, 7, session_log);
    write_record(event(now, resumed_at + 1, start));
  }
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, int64_t step, double value, double wall_time) {
  std::string v, summary, what;
  put_bytes(v, 1, tag);
  put_fixed(v, 2, static_cast<float>(value));
  put_bytes(summary, 1, v);
  put_bytes(what, 5, summary);
  write_record(event(wall_time, step, what));
}

void TensorBoardWriter::flush() {
  IRIS_USER_CHECK(std::fflush(file_) == 0, "{}: cannot write the TensorBoard event file: {}", path_.string(),
                  std::strerror(errno));
}

void TensorBoardWriter::write_record(const std::string& payload) {
  std::string length;
  put_le(length, payload.size(), 8);
  std::string record = length;
  put_le(record, masked_crc32c(length), 4);
  record += payload;
  put_le(record, masked_crc32c(payload), 4);
  IRIS_USER_CHECK(std::fwrite(record.data(), 1, record.size(), file_) == record.size(),
                  "{}: cannot write the TensorBoard event file: {}", path_.string(), std::strerror(errno));
}

}  // namespace iris::io
