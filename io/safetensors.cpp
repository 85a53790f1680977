#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string_view>
#include <utility>

#include "io/durable_file.h"
#include "src/core/check.h"

namespace iris::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace fs = std::filesystem;
using nlohmann::json;

// One mapped .safetensors file with its validated header; unmapped when the last model copy goes.
struct SafetensorsModel::MappedShard {
  std::string path;
  const std::byte* map = nullptr;  // (size,)
  size_t size = 0;
  uint64_t data_start = 0;  // 8 + header length
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;

  MappedShard() = default;
  MappedShard(const MappedShard&) = delete;
  MappedShard& operator=(const MappedShard&) = delete;
  ~MappedShard() {
    if (map != nullptr) ::munmap(const_cast<std::byte*>(map), size);
  }
};

namespace {

using MappedShard = SafetensorsModel::MappedShard;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string errno_text() { return std::strerror(errno); }

bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

// Safetensors spells dtypes exactly ("F32", "BF16", ...); parse_dtype's CLI aliases are not valid here.
bool parse_file_dtype(const std::string& s, DType* out) {
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U16, DType::U8}) {
    if (dtype_name(t) == s) {
      *out = t;
      return true;
    }
  }
  return false;
}

// numel * element size, or false when the product overflows what a file (and int64 numel) can hold.
bool checked_bytes(const std::vector<int64_t>& shape, DType t, uint64_t* bytes) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  return !__builtin_mul_overflow(n, static_cast<uint64_t>(dtype_size(t)), bytes);
}

json parse_json(std::string_view text, const std::string& path) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw UserError(fmt::format("{}: the header is not valid JSON: {}", path, e.what()));
  }
}

// Validates one header entry `name: {"dtype", "shape", "data_offsets"}` against the data section.
TensorInfo parse_tensor_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_size) {
  const auto where = [&] { return fmt::format("{}: tensor '{}'", path, name); };
  IRIS_USER_CHECK(v.is_object(), "{}: header entry is not an object", where());
  TensorInfo info;
  info.name = name;
  info.file = path;

  auto dtype = v.find("dtype");
  IRIS_USER_CHECK(dtype != v.end() && dtype->is_string(), "{}: missing or non-string \"dtype\"", where());
  IRIS_USER_CHECK(parse_file_dtype(dtype->get<std::string>(), &info.dtype),
                  "{}: unsupported dtype '{}' (Iris reads F32, BF16, F16, I32, I64, U16 and U8)", where(),
                  dtype->get<std::string>());

  auto shape = v.find("shape");
  IRIS_USER_CHECK(shape != v.end() && shape->is_array(), "{}: missing \"shape\" array", where());
  for (const json& d : *shape) {
    IRIS_USER_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, "{}: shape {} has an entry that is not a "
                    "non-negative integer", where(), shape->dump());
    info.shape.push_back(d.get<int64_t>());
  }
  uint64_t bytes = 0;
  IRIS_USER_CHECK(checked_bytes(info.shape, info.dtype, &bytes), "{}: shape {} is too large", where(), shape->dump());

  auto offsets = v.find("data_offsets");
  IRIS_USER_CHECK(offsets != v.end() && offsets->is_array() && offsets->size() == 2 &&
                      (*offsets)[0].is_number_unsigned() && (*offsets)[1].is_number_unsigned(),
                  "{}: \"data_offsets\" must be [begin, end] with non-negative integers", where());
  info.data_begin = (*offsets)[0].get<uint64_t>();
  info.data_end = (*offsets)[1].get<uint64_t>();
  IRIS_USER_CHECK(info.data_begin <= info.data_end, "{}: data_offsets [{}, {}] end before they begin", where(),
                  info.data_begin, info.data_end);
  IRIS_USER_CHECK(info.data_end <= data_size,
                  "{}: data_offsets [{}, {}] lie outside the {}-byte data section (truncated or corrupt file)",
                  where(), info.data_begin, info.data_end, data_size);
  IRIS_USER_CHECK(info.data_end - info.data_begin == bytes,
                  "{}: data_offsets [{}, {}] span {} bytes, but dtype {} with shape {} needs {} bytes", where(),
                  info.data_begin, info.data_end, info.data_end - info.data_begin, dtype_name(info.dtype),
                  shape->dump(), bytes);
  return info;
}

std::shared_ptr<const MappedShard> open_shard(const fs::path& file) {
  auto shard = std::make_shared<MappedShard>();
  shard->path = file.string();
  const std::string& path = shard->path;

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  IRIS_USER_CHECK(fd >= 0, "cannot open safetensors file {}: {}", path, errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UserError(fmt::format("{} is not a regular file", path));
  }
  shard->size = static_cast<size_t>(st.st_size);
  if (shard->size < 8) {
    ::close(fd);
    throw UserError(fmt::format("{}: truncated safetensors file: {} bytes, but it must start with an 8-byte "
                                "header length", path, shard->size));
  }
  void* p = ::mmap(nullptr, shard->size, PROT_READ, MAP_SHARED, fd, 0);
  int mmap_errno = errno;
  ::close(fd);
  IRIS_USER_CHECK(p != MAP_FAILED, "cannot map {}: {}", path, std::strerror(mmap_errno));
  shard->map = static_cast<const std::byte*>(p);

  uint64_t header_len;
  std::memcpy(&header_len, shard->map, 8);
  IRIS_USER_CHECK(header_len <= shard->size - 8, "{}: header length {} is larger than the {} bytes after it "
                  "(truncated file, or not a safetensors file)", path, header_len, shard->size - 8);
  shard->data_start = 8 + header_len;
  const uint64_t data_size = shard->size - shard->data_start;

  std::string_view text(reinterpret_cast<const char*>(shard->map) + 8, header_len);
  json header = parse_json(text, path);
  IRIS_USER_CHECK(header.is_object(), "{}: the header must be a JSON object, got {}", path, header.type_name());
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      IRIS_USER_CHECK(value.is_object(), "{}: __metadata__ must be an object of strings", path);
      for (const auto& [mk, mv] : value.items()) {
        IRIS_USER_CHECK(mv.is_string(), "{}: __metadata__ value for '{}' must be a string", path, mk);
        shard->metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    shard->tensors.emplace(key, parse_tensor_entry(path, key, value, data_size));
  }
  // Tensors share no bytes (as the safetensors format requires): overlapping ranges mean a corrupt or
  // hand-made header, and writing one tensor must never change another.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (begin, end) of each non-empty tensor
  std::vector<const std::string*> names;
  for (const auto& [name, info] : shard->tensors)
    if (info.data_end > info.data_begin) ranges.emplace_back(info.data_begin, info.data_end), names.push_back(&name);
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    const size_t prev = order[k - 1], cur = order[k];
    IRIS_USER_CHECK(ranges[cur].first >= ranges[prev].second,
                    "{}: tensors '{}' (data_offsets [{}, {}]) and '{}' (data_offsets [{}, {}]) overlap (corrupt header)",
                    path, *names[prev], ranges[prev].first, ranges[prev].second, *names[cur], ranges[cur].first,
                    ranges[cur].second);
  }
  return shard;
}

json read_json_file(const fs::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  IRIS_USER_CHECK(f != nullptr, "cannot open {}: {}", file.string(), errno_text());
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  IRIS_USER_CHECK(!failed, "cannot read {}", file.string());
  return parse_json(text, file.string());
}

// Converts n elements at src (possibly unaligned: a header length that is not a multiple of the
// element size misaligns the whole data section) to fp32, in parallel chunks.
void convert_to_f32_any_alignment(float* dst, const std::byte* src, DType t, size_t n) {
  const size_t esize = dtype_size(t);
  const bool aligned = reinterpret_cast<uintptr_t>(src) % esize == 0;
  constexpr size_t kChunk = 4096;
  const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (chunks > 64)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kChunk;
    const size_t len = std::min(kChunk, n - begin);
    const std::byte* s = src + begin * esize;
    if (aligned) {
      convert_to_f32(dst + begin, s, t, len);
    } else {
      alignas(8) std::byte staged[kChunk * 4];
      std::memcpy(staged, s, len * esize);
      convert_to_f32(dst + begin, staged, t, len);
    }
  }
}





}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- reading ----

SafetensorsModel SafetensorsModel::open(const fs::path& path) {
  SafetensorsModel model;
  model.path_ = path;
  std::error_code ec;
  IRIS_USER_CHECK(fs::exists(path, ec), "safetensors model {} does not exist", path.string());

  auto open_single_file = [&model](const fs::path& file) {
    auto shard = open_shard(file);
    for (const auto& [name, info] : shard->tensors) model.tensors_[name] = Entry{info, shard};
    model.metadata_ = shard->metadata;
    return model;
  };
  fs::path index_path;
  if (fs::is_directory(path, ec)) {
    if (!fs::exists(path / kIndexFile, ec)) {
      IRIS_USER_CHECK(fs::exists(path / kSingleFile, ec), "{} holds neither {} nor {}", path.string(),
                      kSingleFile, kIndexFile);
      return open_single_file(path / kSingleFile);
    }
    index_path = path / kIndexFile;
  } else if (path.string().ends_with(".index.json")) {
    index_path = path;
  } else {
    return open_single_file(path);
  }

  // Sharded: the index's weight_map says which shard holds each tensor.
  const std::string index = index_path.string();
  json j = read_json_file(index_path);
  IRIS_USER_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
                  "{}: expected an object with a \"weight_map\" object", index);
  const json& weight_map = j["weight_map"];
  IRIS_USER_CHECK(!weight_map.empty(), "{}: weight_map names no tensors", index);
  const fs::path dir = index_path.parent_path();
  std::map<std::string, std::shared_ptr<const MappedShard>> shards;  // by file name, so sorted
  for (const auto& [name, file_json] : weight_map.items()) {
    IRIS_USER_CHECK(file_json.is_string(), "{}: weight_map entry for '{}' must be a file name string", index, name);
    const std::string file = file_json.get<std::string>();
    IRIS_USER_CHECK(!file.empty() && file != "." && file != ".." && file.find('/') == std::string::npos,
                    "{}: weight_map puts tensor '{}' in '{}', which is not a plain file name", index, name, file);
    auto it = shards.find(file);
    if (it == shards.end()) {
      IRIS_USER_CHECK(fs::exists(dir / file, ec), "{}: weight_map puts tensor '{}' in shard {}, which does not exist",
                      index, name, (dir / file).string());
      it = shards.emplace(file, open_shard(dir / file)).first;
    }
    auto tensor = it->second->tensors.find(name);
    IRIS_USER_CHECK(tensor != it->second->tensors.end(), "{}: weight_map puts tensor '{}' in {}, which has no such "
                    "tensor", index, name, it->second->path);
    model.tensors_[name] = Entry{tensor->second, it->second};
  }
  model.metadata_ = shards.begin()->second->metadata;
  return model;
}

std::vector<std::string> SafetensorsModel::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, entry] : tensors_) out.push_back(name);
  return out;
}

bool SafetensorsModel::contains(const std::string& name) const { return tensors_.count(name) != 0; }

const SafetensorsModel::Entry& SafetensorsModel::entry(const std::string& name) const {
  auto it = tensors_.find(name);
  IRIS_USER_CHECK(it != tensors_.end(), "safetensors model {} has no tensor named '{}' ({} tensors)",
                  path_.string(), name, tensors_.size());
  return it->second;
}

const TensorInfo& SafetensorsModel::info(const std::string& name) const { return entry(name).info; }

std::map<std::string, std::string> SafetensorsModel::metadata() const { return metadata_; }

std::span<const std::byte> SafetensorsModel::raw(const std::string& name) const {
  const Entry& e = entry(name);
  return {e.shard->map + e.shard->data_start + e.info.data_begin, e.info.data_end - e.info.data_begin};
}

void SafetensorsModel::read_f32(const std::string& name, float* dst, size_t count) const {
  const TensorInfo& t = info(name);
  IRIS_USER_CHECK(is_float_dtype(t.dtype), "{}: tensor '{}' is {}, not a floating-point tensor readable as fp32",
                  t.file, name, dtype_name(t.dtype));
  IRIS_USER_CHECK(count == static_cast<size_t>(t.numel()), "{}: tensor '{}' has {} elements, but {} were requested",
                  t.file, name, t.numel(), count);
  convert_to_f32_any_alignment(dst, raw(name).data(), t.dtype, count);
}

std::vector<float> SafetensorsModel::read_f32(const std::string& name) const {
  std::vector<float> out(static_cast<size_t>(info(name).numel()));
  read_f32(name, out.data(), out.size());
  return out;
}

void SafetensorsModel::read_f32_rows(const std::string& name, int64_t row_begin, int64_t row_end, float* dst) const {
  const TensorInfo& t = info(name);
  IRIS_USER_CHECK(is_float_dtype(t.dtype), "{}: tensor '{}' is {}, not a floating-point tensor readable as fp32",
                  t.file, name, dtype_name(t.dtype));
  IRIS_USER_CHECK(!t.shape.empty(), "{}: tensor '{}' is a scalar and has no rows", t.file, name);
  IRIS_USER_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= t.shape[0],
                  "{}: rows [{}, {}) of tensor '{}' are outside its {} rows", t.file, row_begin, row_end, name,
                  t.shape[0]);
  const size_t row_size = t.shape[0] == 0 ? 0 : static_cast<size_t>(t.numel() / t.shape[0]);
  const std::byte* src = raw(name).data() + static_cast<size_t>(row_begin) * row_size * dtype_size(t.dtype);
  convert_to_f32_any_alignment(dst, src, t.dtype, static_cast<size_t>(row_end - row_begin) * row_size);
}

// ---- writing ----

SafetensorsWriter::SafetensorsWriter(fs::path path, std::map<std::string, std::string> metadata)
    : path_(std::move(path)), tmp_path_(path_.string() + ".tmp"), metadata_(std::move(metadata)) {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  IRIS_USER_CHECK(file_ != nullptr, "cannot create {}: {}", tmp_path_.string(), errno_text());
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) {
    std::error_code ignored;
    fs::remove(tmp_path_, ignored);
  }
}

void SafetensorsWriter::declare(const std::string& name, DType dtype, std::vector<int64_t> shape) {
  IRIS_CHECK(!header_written_, "{}: declare('{}') after data was written; declare every tensor first",
             path_.string(), name);
  IRIS_USER_CHECK(!name.empty() && name != "__metadata__", "{}: invalid tensor name '{}'", path_.string(), name);
  IRIS_USER_CHECK(index_of_.count(name) == 0, "{}: tensor '{}' declared twice", path_.string(), name);
  uint64_t bytes = 0;
  IRIS_USER_CHECK(checked_bytes(shape, dtype, &bytes), "{}: tensor '{}' has an invalid or too large shape",
                  path_.string(), name);
  index_of_[name] = declared_.size();
  declared_.push_back(Declared{name, dtype, std::move(shape), bytes});
}

// Header: __metadata__ first, then the tensors in declaration (= data) order with contiguous
// offsets; padded with spaces to a multiple of 8 as Hugging Face does, so the data stays aligned.
void SafetensorsWriter::write_header_once() {
  if (header_written_) return;
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Declared& d : declared_) {
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(d.dtype);
    entry["shape"] = d.shape;
    entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + d.bytes});
    header[d.name] = std::move(entry);
    offset += d.bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name or metadata value that is not UTF-8
    throw UserError(fmt::format("{}: cannot encode the header: {}", path_.string(), e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();
  header_written_ = true;
  write_bytes(&header_len, 8);
  write_bytes(text.data(), text.size());
}

void SafetensorsWriter::write_bytes(const void* data, size_t bytes) {
  if (bytes == 0) return;
  IRIS_USER_CHECK(std::fwrite(data, 1, bytes, file_) == bytes, "cannot write {}: {}", tmp_path_.string(),
                  errno_text());
}

const SafetensorsWriter::Declared& SafetensorsWriter::next_to_write(const std::string& name) {
  IRIS_CHECK(!finished_ && file_ != nullptr, "{}: write of '{}' after finish()", path_.string(), name);
  IRIS_CHECK(index_of_.count(name) != 0, "{}: tensor '{}' was never declared", path_.string(), name);
  IRIS_CHECK(written_ < declared_.size() && declared_[written_].name == name,
             "{}: tensors must be written in declaration order: expected '{}', got '{}'", path_.string(),
             written_ < declared_.size() ? declared_[written_].name : "(none left)", name);
  write_header_once();
  return declared_[written_];
}

void SafetensorsWriter::write_f32(const std::string& name, const float* data, size_t count) {
  const Declared& d = next_to_write(name);
  IRIS_CHECK(is_float_dtype(d.dtype), "{}: tensor '{}' is declared {}; write it with write_raw", path_.string(),
             name, dtype_name(d.dtype));
  const size_t esize = dtype_size(d.dtype);
  IRIS_CHECK(count * esize == d.bytes, "{}: tensor '{}' needs {} elements, got {}", path_.string(), name,
             d.bytes / esize, count);
  constexpr size_t kChunk = 1 << 18;  // elements converted per write: 1 MiB of fp32
  std::vector<std::byte> staged(std::min(count, kChunk) * esize);
  for (size_t begin = 0; begin < count; begin += kChunk) {
    const size_t len = std::min(kChunk, count - begin);
    convert_from_f32(staged.data(), d.dtype, data + begin, len);
    write_bytes(staged.data(), len * esize);
  }
  ++written_;
}

void SafetensorsWriter::write_raw(const std::string& name, const void* data, size_t bytes) {
  const Declared& d = next_to_write(name);
  IRIS_CHECK(bytes == d.bytes, "{}: tensor '{}' ({} with {} elements) needs {} bytes, got {}", path_.string(), name,
             dtype_name(d.dtype), d.bytes / dtype_size(d.dtype), d.bytes, bytes);
  write_bytes(data, bytes);
  ++written_;
}

void SafetensorsWriter::finish() {
  IRIS_CHECK(!finished_ && file_ != nullptr, "{}: finish() called twice", path_.string());
  IRIS_CHECK(written_ == declared_.size(), "{}: finish() before tensor '{}' (and {} more) was written",
             path_.string(), declared_[written_].name, declared_.size() - written_ - 1);
  write_header_once();  // a file with no tensors is still a valid file
  close_durably(file_, tmp_path_);
  rename_durably(tmp_path_, path_);
  finished_ = true;
}

// ---- whole models ----

void write_safetensors_model(const fs::path& dir, const std::vector<TensorToWrite>& tensors,
                             uint64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  IRIS_USER_CHECK(max_shard_bytes > 0, "{}: the maximum shard size must be positive", dir.string());
  // Greedy in the given order, as transformers' save_pretrained does.
  std::vector<std::vector<size_t>> shards(1);
  std::vector<uint64_t> bytes(tensors.size());
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorToWrite& t = tensors[i];
    IRIS_CHECK(is_float_dtype(t.dtype), "{}: tensor '{}' must be F32, BF16 or F16 to write from fp32, got {}",
               dir.string(), t.name, dtype_name(t.dtype));
    IRIS_USER_CHECK(checked_bytes(t.shape, t.dtype, &bytes[i]), "{}: tensor '{}' has an invalid shape",
                    dir.string(), t.name);
    if (!shards.back().empty() && shard_bytes + bytes[i] > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += bytes[i];
    total_bytes += bytes[i];
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  IRIS_USER_CHECK(!ec, "cannot create directory {}: {}", dir.string(), ec.message());

  const size_t num_shards = shards.size();
  std::set<std::string> written_files;
  std::map<std::string, std::string> weight_map;
  for (size_t s = 0; s < num_shards; ++s) {
    const std::string file = num_shards == 1 ? std::string(kSingleFile)
                                             : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, num_shards);
    SafetensorsWriter writer(dir / file, metadata);
    for (size_t i : shards[s]) writer.declare(tensors[i].name, tensors[i].dtype, tensors[i].shape);
    for (size_t i : shards[s]) {
      const size_t numel = bytes[i] / dtype_size(tensors[i].dtype);
      IRIS_CHECK(numel == 0 || tensors[i].data != nullptr, "tensor '{}' has no data", tensors[i].name);
      writer.write_f32(tensors[i].name, tensors[i].data, numel);
      weight_map[tensors[i].name] = file;
    }
    writer.finish();
    written_files.insert(file);
  }

  // The index goes last: a sharded model becomes visible only once every shard is complete. A
  // single file becomes visible (open() prefers an index) once a previous save's index is removed.
  if (num_shards > 1) {
    nlohmann::ordered_json index;
    index["metadata"]["total_size"] = total_bytes;
    index["weight_map"] = weight_map;  // sorted by tensor name
    write_text_durably(dir / kIndexFile, index.dump(2) + "\n");
    written_files.insert(kIndexFile);
  }
  // Then a previous save's files that this one does not use go, its index first.
  const std::regex shard_name(R"(model-\d{5}-of-\d{5}\.safetensors)");
  std::vector<fs::path> stale;
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    const std::string file = item.path().filename().string();
    const bool ours = file == kSingleFile || file == kIndexFile || std::regex_match(file, shard_name);
    if (ours && written_files.count(file) == 0) stale.push_back(item.path());
  }
  std::stable_partition(stale.begin(), stale.end(), [](const fs::path& p) { return p.filename() == kIndexFile; });
  for (const fs::path& p : stale) {
    std::error_code ignored;
    fs::remove(p, ignored);
  }
}

}  // namespace iris::io
