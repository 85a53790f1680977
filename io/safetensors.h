// Hugging Face safetensors: reading (memory-mapped, lazy) and streaming writing, single-file and
// sharded (model.safetensors.index.json). File layout: u64 little-endian header length N | N bytes
// of JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}} |
// tensor data, little-endian, row-major, offsets relative to the first byte after the header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "src/core/dtype.h"

namespace iris::io {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t data_begin, data_end;  // as in the header: relative to the first byte after it
  std::string file;               // the .safetensors file holding the tensor
  int64_t numel() const;
};

// One model: a .safetensors file, or a directory holding model.safetensors or
// model.safetensors.index.json (+ its shards); a path to an index file also works. Every header is
// validated on open (bad input throws UserError naming the file and tensor); data is read lazily.
class SafetensorsModel {
 public:
  static SafetensorsModel open(const std::filesystem::path& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // UserError naming tensor and path if missing
  std::map<std::string, std::string> metadata() const;     // __metadata__ of the (first) file
  const std::filesystem::path& path() const { return path_; }

  // A whole F32/BF16/F16 tensor converted to fp32; count must equal numel.
  void read_f32(const std::string& name, float* dst, size_t count) const;
  std::vector<float> read_f32(const std::string& name) const;
  // Rows [row_begin, row_end) of dim 0, converted to fp32 (tensor-parallel slices).
  // dst: ((row_end - row_begin) * numel / shape[0],)
  void read_f32_rows(const std::string& name, int64_t row_begin, int64_t row_end, float* dst) const;
  // The stored bytes (dtype as in info()); the span points into the mapping, which lives as long as
  // any copy of this model. Alignment is only guaranteed to the extent the file's header keeps it.
  std::span<const std::byte> raw(const std::string& name) const;

  struct MappedShard;  // one mapped file with its parsed header (defined in the .cpp)

 private:
  struct Entry {
    TensorInfo info;
    std::shared_ptr<const MappedShard> shard;
  };
  const Entry& entry(const std::string& name) const;

  std::filesystem::path path_;
  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Streaming writer: declare every tensor first (so the header is known), then write each tensor's
// data in declaration order; peak memory is one conversion chunk. Writes "<path>.tmp" and renames it
// on finish(), so an interrupted write never leaves a complete-looking file.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();  // without finish(): removes the .tmp file
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void declare(const std::string& name, DType dtype, std::vector<int64_t> shape);
  void write_f32(const std::string& name, const float* data, size_t count);  // converts to the declared dtype
  void write_raw(const std::string& name, const void* data, size_t bytes);     // already in the declared dtype
  void finish();  // checks every declared tensor was written; fsync; rename

 private:
  struct Declared {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t bytes;
  };
  const Declared& next_to_write(const std::string& name);
  void write_header_once();
  void write_bytes(const void* data, size_t bytes);

  std::filesystem::path path_;
  std::filesystem::path tmp_path_;
  std::map<std::string, std::string> metadata_;
  std::vector<Declared> declared_;
  std::map<std::string, size_t> index_of_;
  size_t written_ = 0;  // tensors written so far (declaration order)
  std::FILE* file_ = nullptr;
  bool header_written_ = false;
  bool finished_ = false;
};

struct TensorToWrite {
  std::string name;
  DType dtype;  // F32, BF16 or F16 on disk
  std::vector<int64_t> shape;
  const float* data;  // (numel,)
};

// A whole model from fp32 buffers, in the given order: a single "model.safetensors" when it fits in
// max_shard_bytes, else HF-style shards "model-00001-of-0000K.safetensors" (a tensor larger than the
// limit gets a shard of its own) plus model.safetensors.index.json, written last. Files of a previous
// save in `dir` that the new one does not use (old shards, a stale index) are removed afterwards.
void write_safetensors_model(const std::filesystem::path& dir, const std::vector<TensorToWrite>& tensors,
                             uint64_t max_shard_bytes,
                             const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace iris::io
