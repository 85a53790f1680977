// TensorBoard event files (what tf.summary and torch.utils.tensorboard write): a TFRecord stream of
// Event protocol buffers. Each record is uint64 length, uint32 masked CRC-32C of the length, the
// serialized Event, uint32 masked CRC-32C of it, all little-endian. The first Event names the format
// ("brain.Event:2").
//
// The three messages Iris writes are encoded here by hand, in protobuf's wire format, with the field
// numbers of tensorboard/compat/proto/event.proto and summary.proto (docs/design.md, decision 13):
//   Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//           SessionLog session_log = 7; }
//   Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; }  (START = 1)
// Debian's libprotobuf cannot be linked beside Debian's libsentencepiece, which exports the symbols of
// its own embedded protobuf copy (the process crashes in protobuf's static initialisers).
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace iris::io {

// CRC-32C (Castagnoli), as TFRecord uses it, and its masked form ((crc >> 15 | crc << 17) + 0xa282ead8).
uint32_t crc32c(std::string_view bytes);
uint32_t masked_crc32c(std::string_view bytes);

class TensorBoardWriter {
 public:
  // Creates `dir` and a new event file in it, events.out.tfevents.<10-digit unix time>.<host>.<pid>.iris
  // (a later run's file sorts after an earlier one's). A run resumed after step `resumed_at` > 0 first
  // writes a SessionLog START at step resumed_at + 1: TensorBoard then drops the values an earlier file
  // holds for the steps this run does again. Throws UserError naming the file when it cannot be created.
  TensorBoardWriter(const std::filesystem::path& dir, int64_t resumed_at = 0);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One scalar (stored as float32, as every TensorBoard scalar is).
  void add_scalar(const std::string& tag, int64_t step, double value, double wall_time);
  void flush();  // makes what is written visible to a reader (fflush)
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

// Seconds since the Unix epoch, with sub-second resolution (an Event's wall_time).
double unix_time_now();

}  // namespace iris::io
