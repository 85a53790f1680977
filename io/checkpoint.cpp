#include "io/checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "io/durable_file.h"
#include "src/core/check.h"

namespace iris::io {
namespace fs = std::filesystem;

namespace {

// bfloat16 as an HDF5 float type: fp32's sign and exponent with a 7-bit mantissa, in 2 bytes.
// HDF5 converts between it and fp32 on write and read (readers that know HDF5 see a float type).
H5Id bfloat16_type() {
  H5Id t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  if (!t.valid()) return t;
  if (H5Tset_fields(t.get(), 15, 7, 8, 0, 7) < 0 || H5Tset_precision(t.get(), 16) < 0 || H5Tset_size(t.get(), 2) < 0 ||
      H5Tset_ebias(t.get(), 127) < 0)
    t.reset();
  return t;
}

// The innermost message of HDF5's error stack (its automatic printing is switched off).
herr_t collect_h5_error(unsigned n, const H5E_error2_t* err, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (!text->empty()) *text += "; ";
  *text += fmt::format("{}: {}", err->func_name ? err->func_name : "?", err->desc ? err->desc : "?");
  return n >= 2 ? 1 : 0;  // the two innermost frames say enough
}

std::string h5_error_text() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_h5_error, &text);
  H5Eclear2(H5E_DEFAULT);
  return text;
}

// Before the first HDF5 call: no automatic error printing, and no HDF5 exit handler. HDF5 1.10's H5Fclose
// of a file whose flush failed (a full disk) reports the failure but leaves a dangling id behind, and the
// exit handler's H5F__close_cb then crashes the process (exit 139 instead of 2). Every id here is owned
// by an H5Id and closed before main returns, so the handler has nothing left to do.
void silence_h5() {
  static const bool done = [] {
    H5dont_atexit();  // fails harmlessly when another caller already started the library
    return H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0;
  }();
  (void)done;
}

[[noreturn]] void h5_fail(const char* call, const char* file, int line, const std::string& context) {
  ::iris::detail::throw_check_failure(call, file, line, fmt::format("{} ({})", context, h5_error_text()));
}

}  // namespace

// Every HDF5 call goes through this: the call, file:line and rank (via throw_check_failure), and what
// Iris was doing (`context`, naming the checkpoint file and tensor).
#define IRIS_H5_CHECK(call, context)                                         \
  [&]() {                                                                    \
    auto iris_h5_rc_ = (call);                                               \
    if (iris_h5_rc_ < 0) h5_fail(#call, __FILE__, __LINE__, (context));      \
    return iris_h5_rc_;                                                      \
  }()

// An owned id from a checked HDF5 call: IRIS_H5_OWN(H5Dopen2(...), H5Dclose, ctx).
#define IRIS_H5_OWN(call, close, context) H5Id(IRIS_H5_CHECK(call, context), close)

namespace {

void write_int_attr(hid_t obj, const char* key, const std::vector<int64_t>& values, const std::string& ctx) {
  const hsize_t n = std::max<size_t>(values.size(), 1);
  const H5Id space = IRIS_H5_OWN(H5Screate_simple(1, &n, nullptr), H5Sclose, ctx);
  const H5Id attr = IRIS_H5_OWN(H5Acreate2(obj, key, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose, ctx);
  std::vector<int64_t> v = values.empty() ? std::vector<int64_t>{0} : values;
  IRIS_H5_CHECK(H5Awrite(attr.get(), H5T_NATIVE_INT64, v.data()), ctx);
}

std::vector<int64_t> read_int_attr(hid_t obj, const char* key, const std::string& ctx) {
  IRIS_USER_CHECK(H5Aexists(obj, key) > 0, "{}: attribute '{}' is missing (not an Iris checkpoint file?)", ctx, key);
  const H5Id attr = IRIS_H5_OWN(H5Aopen(obj, key, H5P_DEFAULT), H5Aclose, ctx);
  const H5Id space = IRIS_H5_OWN(H5Aget_space(attr.get()), H5Sclose, ctx);
  const hssize_t n = IRIS_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), ctx);
  std::vector<int64_t> v(static_cast<size_t>(n));
  IRIS_H5_CHECK(H5Aread(attr.get(), H5T_NATIVE_INT64, v.data()), ctx);
  return v;
}

void write_string_attr(hid_t obj, const char* key, const std::string& value, const std::string& ctx) {
  const H5Id type = IRIS_H5_OWN(H5Tcopy(H5T_C_S1), H5Tclose, ctx);
  IRIS_H5_CHECK(H5Tset_size(type.get(), std::max<size_t>(value.size(), 1)), ctx);
  const H5Id space = IRIS_H5_OWN(H5Screate(H5S_SCALAR), H5Sclose, ctx);
  const H5Id attr = IRIS_H5_OWN(H5Acreate2(obj, key, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose, ctx);
  std::string v = value.empty() ? std::string(1, '\0') : value;
  IRIS_H5_CHECK(H5Awrite(attr.get(), type.get(), v.data()), ctx);
}

std::string read_string_attr(hid_t obj, const char* key, const std::string& ctx) {
  const H5Id attr = IRIS_H5_OWN(H5Aopen(obj, key, H5P_DEFAULT), H5Aclose, ctx);
  const H5Id type = IRIS_H5_OWN(H5Aget_type(attr.get()), H5Tclose, ctx);
  const size_t n = H5Tget_size(type.get());
  std::string v(n, '\0');
  IRIS_H5_CHECK(H5Aread(attr.get(), type.get(), v.data()), ctx);
  return v.substr(0, v.find('\0'));
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

const char* kGroups[] = {"weights", "exp_avg", "exp_avg_sq"};



}  // namespace

bool SliceInfo::is_whole_block() const {
  int64_t cols = 1;
  for (size_t d = 1; d < block_shape.size(); ++d) cols *= block_shape[d];
  return flat_begin == 0 && flat_end == valid_rows * cols;
}

int64_t SliceInfo::global_numel() const {
  int64_t n = 1;
  for (int64_t d : global_shape) n *= d;
  return n;
}

int64_t SliceInfo::global_index(int64_t k) const {
  if (block_shape.size() == 1) return block_offset[0] + k;
  const int64_t cols = block_shape[1];
  const int64_t r = k / cols, c = k % cols;
  if (r >= valid_rows) return -1;
  return (block_offset[0] + r) * global_shape[1] + block_offset[1] + c;
}

// ---------------------------------------------------------------------------------------- writer

CheckpointFileWriter::CheckpointFileWriter(const fs::path& path) : path_(path) {
  silence_h5();
  file_ = IRIS_H5_OWN(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                      fmt::format("creating checkpoint file {}", path.string()));
  for (const char* g : kGroups) {
    const H5Id group = IRIS_H5_OWN(H5Gcreate2(file_.get(), g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, path.string());
  }
}

CheckpointFileWriter::~CheckpointFileWriter() = default;  // file_ closes itself

void CheckpointFileWriter::set_attribute(const std::string& key, int64_t value) {
  write_int_attr(file_.get(), key.c_str(), {value}, path_.string());
}

void CheckpointFileWriter::write(const SliceInfo& s, const float* data) {
  if (s.numel() <= 0) return;
  const std::string ctx = fmt::format("writing tensor {}/{} to {}", s.group, s.name, path_.string());
  // Whole blocks keep their shape (valid rows only); optimizer ranges are 1-D.
  std::vector<hsize_t> dims;
  if (s.is_whole_block()) {
    dims.push_back(static_cast<hsize_t>(s.valid_rows));
    for (size_t d = 1; d < s.block_shape.size(); ++d) dims.push_back(static_cast<hsize_t>(s.block_shape[d]));
  } else {
    dims.push_back(static_cast<hsize_t>(s.numel()));
  }
  // Chunks of about 1 Mi elements (4 MiB): Fletcher32 needs a chunked layout; whole rows per chunk.
  std::vector<hsize_t> chunk = dims;
  hsize_t row = 1;
  for (size_t d = 1; d < dims.size(); ++d) row *= dims[d];
  chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (1u << 20) / std::max<hsize_t>(row, 1)));
  const H5Id space = IRIS_H5_OWN(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose, ctx);
  const H5Id dcpl = IRIS_H5_OWN(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, ctx);
  IRIS_H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), ctx);
  IRIS_H5_CHECK(H5Pset_fletcher32(dcpl.get()), ctx);
  // No object timestamps: the same state then gives the same bytes (reproducible files, cmp-able).
  IRIS_H5_CHECK(H5Pset_obj_track_times(dcpl.get(), false), ctx);
  const std::string path = s.group + "/" + s.name;
  IRIS_CHECK(s.storage_bytes == 4 || s.storage_bytes == 2, "{}: storage of {} bytes per element", ctx, s.storage_bytes);
  const H5Id type = s.storage_bytes == 2 ? bfloat16_type() : H5Id(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  IRIS_H5_CHECK(type.get(), ctx);
  H5Id dset = IRIS_H5_OWN(
      H5Dcreate2(file_.get(), path.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose, ctx);
  IRIS_H5_CHECK(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), ctx);
  write_string_attr(dset.get(), "rule", s.rule, ctx);
  write_int_attr(dset.get(), "global_shape", s.global_shape, ctx);
  write_int_attr(dset.get(), "block_offset", s.block_offset, ctx);
  write_int_attr(dset.get(), "block_shape", s.block_shape, ctx);
  write_int_attr(dset.get(), "valid_rows", {s.valid_rows}, ctx);
  write_int_attr(dset.get(), "flat_range", {s.flat_begin, s.flat_end}, ctx);
  // Closing the dataset writes its cached chunks: a full disk can fail here, and must not pass unseen.
  IRIS_H5_CHECK(dset.close(), ctx);
  bytes_ += static_cast<uint64_t>(s.numel()) * s.storage_bytes;
}

void CheckpointFileWriter::close() {
  const std::string ctx = fmt::format("closing checkpoint file {} (disk full?)", path_.string());
  // The file is closed even when the flush fails: an id still open at exit is closed again by HDF5's
  // exit handler, which crashes on a file whose writes failed.
  const bool flushed = H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) >= 0;
  const std::string flush_error = flushed ? "" : h5_error_text();
  const bool closed = file_.close() >= 0;
  IRIS_USER_CHECK(flushed && closed, "{}: {}", ctx, flushed ? h5_error_text() : flush_error);
  fsync_file(path_);
}

// ---------------------------------------------------------------------------------------- reader

CheckpointFileReader::CheckpointFileReader(const fs::path& path) : path_(path) {
  silence_h5();
  IRIS_USER_CHECK(fs::exists(path), "checkpoint file {} is missing", path.string());
  file_ = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  IRIS_USER_CHECK(file_.valid(), "checkpoint file {} cannot be opened as HDF5 (truncated or damaged?): {}", path.string(),
                  h5_error_text());
  for (const char* g : kGroups) {
    const std::string ctx = fmt::format("listing group {} of {}", g, path.string());
    IRIS_USER_CHECK(H5Lexists(file_.get(), g, H5P_DEFAULT) > 0, "checkpoint file {} has no group '{}' (not an Iris checkpoint?)",
                    path.string(), g);
    std::vector<std::string> names;
    IRIS_H5_CHECK(H5Literate_by_name(file_.get(), g, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names, H5P_DEFAULT),
                  ctx);
    for (const auto& name : names) {
      const std::string dctx = fmt::format("checkpoint file {}, tensor {}/{}", path.string(), g, name);
      const H5Id dset = IRIS_H5_OWN(H5Dopen2(file_.get(), (std::string(g) + "/" + name).c_str(), H5P_DEFAULT), H5Dclose,
                                    dctx);
      SliceInfo s;
      s.group = g;
      s.name = name;
      s.rule = read_string_attr(dset.get(), "rule", dctx);
      s.global_shape = read_int_attr(dset.get(), "global_shape", dctx);
      s.block_offset = read_int_attr(dset.get(), "block_offset", dctx);
      s.block_shape = read_int_attr(dset.get(), "block_shape", dctx);
      s.valid_rows = read_int_attr(dset.get(), "valid_rows", dctx).at(0);
      const auto range = read_int_attr(dset.get(), "flat_range", dctx);
      IRIS_USER_CHECK(range.size() == 2 && s.global_shape.size() == s.block_shape.size() &&
                          s.block_offset.size() == s.block_shape.size(),
                      "{}: inconsistent slice attributes", dctx);
      s.flat_begin = range[0];
      s.flat_end = range[1];
      const H5Id type = IRIS_H5_OWN(H5Dget_type(dset.get()), H5Tclose, dctx);
      s.storage_bytes = static_cast<int>(H5Tget_size(type.get()));
      IRIS_USER_CHECK(H5Tget_class(type.get()) == H5T_FLOAT && (s.storage_bytes == 4 || s.storage_bytes == 2),
                      "{}: not a float32 or bfloat16 dataset", dctx);
      const H5Id space = IRIS_H5_OWN(H5Dget_space(dset.get()), H5Sclose, dctx);
      const hssize_t n = IRIS_H5_CHECK(H5Sget_simple_extent_npoints(space.get()), dctx);
      IRIS_USER_CHECK(n == s.numel(), "{}: holds {} elements but its flat_range says {}", dctx, n, s.numel());
      slices_.push_back(std::move(s));
    }
  }
}

CheckpointFileReader::~CheckpointFileReader() = default;  // file_ closes itself

int64_t CheckpointFileReader::attribute(const std::string& key) const {
  return read_int_attr(file_.get(), key.c_str(), path_.string()).at(0);
}

void CheckpointFileReader::read(const SliceInfo& s, float* dst) const {
  const std::string path = s.group + "/" + s.name;
  const H5Id dset(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
  const bool ok = dset.valid() && H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0;
  IRIS_USER_CHECK(ok, "checkpoint file {}: cannot read tensor {} ({}): {}. The file is damaged (checksum mismatch or "
                  "truncated); load an earlier checkpoint",
                  path_.string(), s.name, s.group, h5_error_text());
}

void CheckpointFileReader::read_into_global(const SliceInfo& s, float* global, int64_t row_begin, int64_t row_end,
                                            std::vector<uint8_t>* covered) const {
  const int64_t cols = s.global_shape.size() > 1 ? s.global_shape[1] : 1;
  if (s.is_whole_block()) {
    // A hyperslab of the rows this block shares with [row_begin, row_end), straight into place.
    const int64_t a = std::max(row_begin, s.block_offset[0]), b = std::min(row_end, s.block_offset[0] + s.valid_rows);
    if (a >= b) return;
    const std::string path = s.group + "/" + s.name;
    const std::string ctx = fmt::format("checkpoint file {}, tensor {}/{}", path_.string(), s.group, s.name);
    const int rank = static_cast<int>(s.block_shape.size());
    std::vector<hsize_t> fstart(rank, 0), count(rank), mstart(rank, 0), mdims(rank);
    fstart[0] = static_cast<hsize_t>(a - s.block_offset[0]);
    count[0] = static_cast<hsize_t>(b - a);
    mstart[0] = static_cast<hsize_t>(a);
    for (int d = 0; d < rank; ++d) mdims[d] = static_cast<hsize_t>(s.global_shape[d]);
    for (int d = 1; d < rank; ++d) {
      count[d] = static_cast<hsize_t>(s.block_shape[d]);
      mstart[d] = static_cast<hsize_t>(s.block_offset[d]);
    }
    const H5Id dset = IRIS_H5_OWN(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose, ctx);
    const H5Id fspace = IRIS_H5_OWN(H5Dget_space(dset.get()), H5Sclose, ctx);
    IRIS_H5_CHECK(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, fstart.data(), nullptr, count.data(), nullptr), ctx);
    const H5Id mspace = IRIS_H5_OWN(H5Screate_simple(rank, mdims.data(), nullptr), H5Sclose, ctx);
    IRIS_H5_CHECK(H5Sselect_hyperslab(mspace.get(), H5S_SELECT_SET, mstart.data(), nullptr, count.data(), nullptr), ctx);
    const bool ok = H5Dread(dset.get(), H5T_NATIVE_FLOAT, mspace.get(), fspace.get(), H5P_DEFAULT, global) >= 0;
    IRIS_USER_CHECK(ok, "checkpoint file {}: cannot read tensor {} ({}): {}. The file is damaged (checksum mismatch "
                    "or truncated); load an earlier checkpoint",
                    path_.string(), s.name, s.group, h5_error_text());
    if (covered) {
      const int64_t bc = rank > 1 ? s.block_shape[1] : 1, c0 = rank > 1 ? s.block_offset[1] : 0;
      for (int64_t r = a; r < b; ++r)
        std::fill_n(covered->begin() + r * cols + c0, bc, uint8_t{1});
    }
    return;
  }
  std::vector<float> data(static_cast<size_t>(s.numel()));
  read(s, data.data());
  for (int64_t k = 0; k < s.numel(); ++k) {
    const int64_t g = s.global_index(s.flat_begin + k);
    if (g < 0 || g / cols < row_begin || g / cols >= row_end) continue;
    global[g] = data[k];
    if (covered) (*covered)[g] = 1;
  }
}

// -------------------------------------------------------------------------------------- manifest

nlohmann::json Manifest::to_json() const {
  nlohmann::json files_json = nlohmann::json::array();
  for (const auto& f : files) files_json.push_back({{"name", f.name}, {"size", f.size}, {"crc32", f.crc32}});
  return {{"format", "iris-checkpoint"},
          {"format_version", format_version},
          {"step", step},
          {"consumed_samples", consumed_samples},
          {"tokens", tokens},
          {"skipped_steps", skipped_steps},
          {"layout", {{"tp", tp}, {"pp", pp}, {"dp", dp}}},
          {"has_optimizer_state", has_optimizer_state},
          {"val_loss", val_loss ? nlohmann::json(*val_loss) : nlohmann::json()},
          {"run_config", run_config_ini},
          {"model_config", model_config},
          {"files", files_json}};
}

Manifest Manifest::from_json(const nlohmann::json& j, const std::string& source) {
  Manifest m;
  try {
    IRIS_USER_CHECK(j.value("format", "") == "iris-checkpoint", "{}: not an Iris checkpoint manifest", source);
    m.format_version = j.at("format_version").get<int>();
    IRIS_USER_CHECK(m.format_version == kCheckpointFormatVersion,
                    "{}: checkpoint format version {} is not supported (this build reads version {})", source,
                    m.format_version, kCheckpointFormatVersion);
    m.step = j.at("step").get<int64_t>();
    m.consumed_samples = j.at("consumed_samples").get<int64_t>();
    m.tokens = j.at("tokens").get<int64_t>();
    m.skipped_steps = j.at("skipped_steps").get<int>();
    m.tp = j.at("layout").at("tp").get<int>();
    m.pp = j.at("layout").at("pp").get<int>();
    m.dp = j.at("layout").at("dp").get<int>();
    m.has_optimizer_state = j.at("has_optimizer_state").get<bool>();
    m.run_config_ini = j.at("run_config").get<std::string>();
    m.model_config = j.at("model_config");
    // Absent in checkpoints written before checkpoint.keep_best; null when the step was not evaluated.
    if (j.contains("val_loss") && !j.at("val_loss").is_null()) m.val_loss = j.at("val_loss").get<double>();
    IRIS_USER_CHECK(m.tp > 0 && m.pp > 0 && m.dp > 0, "{}: layout tp={} pp={} dp={} must be positive", source, m.tp,
                    m.pp, m.dp);
    for (const auto& f : j.at("files")) {
      IRIS_USER_CHECK(f.at("size").is_number_unsigned() && f.at("crc32").is_number_unsigned(),
                      "{}: file entry {} needs a non-negative size and crc32", source, f.dump());
      m.files.push_back({f.at("name").get<std::string>(), f.at("size").get<uint64_t>(), f.at("crc32").get<uint32_t>()});
      // A rank file lives inside the checkpoint directory: a path must never reach outside it.
      const std::string& name = m.files.back().name;
      IRIS_USER_CHECK(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos,
                      "{}: rank file name '{}' is not a plain file name inside the checkpoint", source, name);
    }
  } catch (const nlohmann::json::exception& e) {
    throw UserError(fmt::format("{}: malformed manifest: {}", source, e.what()));
  }
  return m;
}

std::string step_dir_name(int64_t step) { return fmt::format("step_{:08}", step); }
std::string rank_file_name(int rank) { return fmt::format("rank_{:05}.h5", rank); }

uint32_t crc32_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  IRIS_USER_CHECK(in.good(), "cannot open {} to compute its checksum", path.string());
  std::vector<char> buf(1 << 22);
  uLong crc = crc32(0L, Z_NULL, 0);  // zlib's CRC-32 (IEEE 802.3)
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(in.gcount()));
  }
  return static_cast<uint32_t>(crc);
}

void finalize_checkpoint(const fs::path& tmp_dir, const fs::path& final_dir, const Manifest& manifest) {
  write_text_durably(tmp_dir / "manifest.json", manifest.to_json().dump(1));
  fsync_directory(tmp_dir);
  std::error_code ec;
  if (fs::exists(final_dir)) fs::remove_all(final_dir, ec);  // a checkpoint of the same step (re-run)
  rename_durably(tmp_dir, final_dir);
}

void write_latest(const fs::path& root, const std::string& name) { write_text_durably(root / "latest", name + "\n"); }

namespace {

// The validation loss recorded in a complete checkpoint's manifest, if any (an unreadable manifest: none).
std::optional<double> recorded_val_loss(const fs::path& dir) {
  std::ifstream in(dir / "manifest.json");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("val_loss") || !j.at("val_loss").is_number()) return std::nullopt;
  return j.at("val_loss").get<double>();
}

}  // namespace

std::string prune_checkpoints(const fs::path& root, Retention retention) {
  static const std::regex complete("step_[0-9]{8}"), partial("step_[0-9]{8}\\.tmp");
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    std::error_code ec;
    if (std::regex_match(name, partial)) fs::remove_all(entry.path(), ec);  // left by a crashed save
    else if (std::regex_match(name, complete)) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());  // oldest first: the names hold zero-padded steps
  std::vector<bool> kept(dirs.size(), false);
  const size_t newest = retention.keep <= 0 ? dirs.size() : std::min<size_t>(retention.keep, dirs.size());
  for (size_t i = dirs.size() - newest; i < dirs.size(); ++i) kept[i] = true;
  std::vector<std::pair<double, size_t>> ranked;  // (val_loss, index): lowest first, earlier step on ties
  if (retention.keep_best > 0)
    for (size_t i = 0; i < dirs.size(); ++i)
      if (const std::optional<double> v = recorded_val_loss(dirs[i]); v && std::isfinite(*v)) ranked.emplace_back(*v, i);
  std::sort(ranked.begin(), ranked.end());
  for (size_t r = 0; r < ranked.size() && r < static_cast<size_t>(retention.keep_best); ++r) kept[ranked[r].second] = true;
  for (size_t i = 0; i < dirs.size(); ++i) {
    std::error_code ec;
    if (!kept[i]) fs::remove_all(dirs[i], ec);
  }
  if (retention.keep_best <= 0) return "";
  if (ranked.empty()) {
    std::error_code ec;
    fs::remove(root / "best", ec);
    return "";
  }
  const std::string best = dirs[ranked.front().second].filename().string();
  write_text_durably(root / "best", best + "\n");
  return best;
}

fs::path newest_checkpoint_before(const fs::path& root, int64_t before) {
  static const std::regex complete("step_([0-9]{8})");
  fs::path best;
  int64_t best_step = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (!std::regex_match(name, m, complete) || !fs::exists(entry.path() / "manifest.json")) continue;
    const int64_t step = std::stoll(m[1].str());
    if (step < before && step > best_step) best_step = step, best = entry.path();
  }
  return best;
}

fs::path resolve_checkpoint(const std::string& spec, const fs::path& root) {
  // A pointer file (latest or best) holds the name of a step directory beside it.
  auto via_pointer = [](const fs::path& pointer) {
    std::ifstream in(pointer);
    std::string name;
    std::getline(in, name);
    IRIS_USER_CHECK(!name.empty(), "{}: the checkpoint pointer is empty", pointer.string());
    const fs::path target = pointer.parent_path() / name;
    IRIS_USER_CHECK(fs::exists(target / "manifest.json"), "{} points at {}, which is not a complete checkpoint",
                    pointer.string(), target.string());
    return target;
  };
  if (spec == "auto") return fs::exists(root / "latest") ? via_pointer(root / "latest") : fs::path();
  if (spec == "latest" || spec == "best") {
    IRIS_USER_CHECK(fs::exists(root / spec), "checkpoint.load={} but {} has no '{}' file{}", spec, root.string(), spec,
                    spec == "best" ? " (it is written with checkpoint.keep_best > 0 once a checkpoint has a val_loss)"
                                   : " (no checkpoint)");
    return via_pointer(root / spec);
  }
  const fs::path p(spec);
  if (fs::exists(p / "manifest.json")) return p;
  if (fs::exists(p / "latest")) return via_pointer(p / "latest");
  const std::string leaf = p.filename().string();
  if ((leaf == "latest" || leaf == "best") && fs::is_regular_file(p)) return via_pointer(p);
  IRIS_USER_CHECK(false, "{} is not a checkpoint: it has no manifest.json (an unfinished save?) and no 'latest' file",
                  spec);
  return {};
}

// -------------------------------------------------------------------------------- checkpoint dir

CheckpointDir CheckpointDir::open(const fs::path& dir) {
  CheckpointDir c;
  c.dir_ = dir;
  const fs::path mpath = dir / "manifest.json";
  std::ifstream in(mpath);
  IRIS_USER_CHECK(in.good(), "{}: no manifest.json (not a complete checkpoint)", dir.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(fmt::format("{}: malformed JSON: {}", mpath.string(), e.what()));
  }
  c.manifest_ = Manifest::from_json(j, mpath.string());
  for (const auto& f : c.manifest_.files) {
    const fs::path p = dir / f.name;
    IRIS_USER_CHECK(fs::exists(p), "checkpoint {}: rank file {} is missing", dir.string(), f.name);
    const uint64_t size = fs::file_size(p);
    IRIS_USER_CHECK(size == f.size, "checkpoint {}: rank file {} has {} bytes but the manifest says {} (truncated?)",
                    dir.string(), f.name, size, f.size);
  }
  c.files_.resize(c.manifest_.files.size());
  return c;
}

const CheckpointFileReader& CheckpointDir::file(size_t i) const {
  if (!files_.at(i)) files_[i] = std::make_unique<CheckpointFileReader>(dir_ / manifest_.files[i].name);
  return *files_[i];
}

std::vector<std::pair<size_t, SliceInfo>> CheckpointDir::slices_of(const std::string& group,
                                                                   const std::string& name) const {
  std::vector<std::pair<size_t, SliceInfo>> out;
  for (size_t i = 0; i < num_files(); ++i)
    for (const auto& s : file(i).slices())
      if (s.group == group && s.name == name) out.emplace_back(i, s);
  return out;
}

std::vector<std::string> CheckpointDir::tensor_names(const std::string& group) const {
  std::vector<std::string> names;
  for (size_t i = 0; i < num_files(); ++i)
    for (const auto& s : file(i).slices())
      if (s.group == group) names.push_back(s.name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

void CheckpointDir::read_global(const std::string& group, const std::string& name, float* global, int64_t row_begin,
                                int64_t row_end) const {
  const auto slices = slices_of(group, name);
  IRIS_USER_CHECK(!slices.empty(), "checkpoint {} has no tensor {} in group {}", dir_.string(), name, group);
  const SliceInfo& first = slices.front().second;
  std::vector<uint8_t> covered(static_cast<size_t>(first.global_numel()), 0);
  for (const auto& [i, s] : slices) {
    IRIS_USER_CHECK(s.global_shape == first.global_shape,
                    "checkpoint {}: tensor {} has global shape [{}] in {} but [{}] in {}", dir_.string(), name,
                    fmt::join(s.global_shape, ", "), manifest_.files[i].name, fmt::join(first.global_shape, ", "),
                    manifest_.files[slices.front().first].name);
    file(i).read_into_global(s, global, row_begin, row_end, &covered);
  }
  const int64_t cols = first.global_shape.size() > 1 ? first.global_shape[1] : 1;
  for (int64_t g = row_begin * cols; g < row_end * cols; ++g)
    IRIS_USER_CHECK(covered[g], "checkpoint {}: element {} of tensor {} ({}) is in no rank file (incomplete checkpoint)",
                    dir_.string(), g, name, group);
}

std::vector<std::string> CheckpointDir::verify() const {
  std::vector<std::string> problems;
  for (size_t i = 0; i < num_files(); ++i) {
    const auto& f = manifest_.files[i];
    try {
      const uint32_t crc = crc32_file(dir_ / f.name);
      if (crc != f.crc32)
        problems.push_back(fmt::format("{}: CRC32 {:08x} but the manifest says {:08x}", f.name, crc, f.crc32));
      const auto& reader = file(i);
      for (const auto& s : reader.slices()) {
        std::vector<float> data(static_cast<size_t>(s.numel()));
        reader.read(s, data.data());
      }
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

}  // namespace iris::io
