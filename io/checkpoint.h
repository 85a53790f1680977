// Iris checkpoints on disk (docs/design.md decision 9): a directory step_<8-digit step>/ holding manifest.json and
// one HDF5 file per rank. Every dataset is a piece of one global tensor and says which piece in its
// attributes, so any layout can read any checkpoint: the piece is the flat range
// [flat_begin, flat_end) of a row-major block of the global tensor at block_offset with block_shape
// (the block may have padding rows past valid_rows, which never reach the file). Weights are whole
// blocks stored 2-D; ZeRO-1 optimizer state is a flat range stored 1-D. Fletcher32 on every chunk.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/h5_handle.h"

namespace iris::io {

constexpr int kCheckpointFormatVersion = 1;

// Where a dataset sits in its global tensor. group: "weights", "exp_avg" or "exp_avg_sq".
struct SliceInfo {
  std::string group, name;              // name: the HF tensor name
  std::string rule;                     // replicated | column | row | vocab (informative)
  std::vector<int64_t> global_shape;    // unpadded
  std::vector<int64_t> block_offset;    // first global index of the block in each dim
  std::vector<int64_t> block_shape;     // the block, padding rows included
  int64_t valid_rows = 0;               // block rows inside the global tensor
  int64_t flat_begin = 0, flat_end = 0; // the block's row-major elements held by the dataset
  int storage_bytes = 4;                // per element on disk: 4 (fp32) or 2 (bf16, weights only)
  bool is_whole_block() const;          // flat range = every valid element (stored 2-D)
  int64_t numel() const { return flat_end - flat_begin; }
  int64_t global_numel() const;
  // Global row-major index of block element k (-1 for a padding row).
  int64_t global_index(int64_t k) const;
};

// One rank's HDF5 file, written dataset by dataset. Throws (naming the file) on any HDF5 failure,
// e.g. a full disk; the destructor closes without throwing.
class CheckpointFileWriter {
 public:
  explicit CheckpointFileWriter(const std::filesystem::path& path);
  ~CheckpointFileWriter();
  CheckpointFileWriter(const CheckpointFileWriter&) = delete;
  CheckpointFileWriter& operator=(const CheckpointFileWriter&) = delete;
  void set_attribute(const std::string& key, int64_t value);  // on the root group
  // data: (slice.numel(),) in the block's row-major order. One piece per (group, tensor) per file.
  // slice.storage_bytes = 2 stores bf16 (rounded to nearest even by HDF5); reads give fp32 either way.
  void write(const SliceInfo& slice, const float* data);
  void close();  // flushes and closes; throws on failure
  uint64_t bytes_written() const { return bytes_; }

 private:
  std::filesystem::path path_;
  H5Id file_;
  uint64_t bytes_ = 0;
};

class CheckpointFileReader {
 public:
  explicit CheckpointFileReader(const std::filesystem::path& path);  // UserError naming the file
  ~CheckpointFileReader();
  CheckpointFileReader(const CheckpointFileReader&) = delete;
  CheckpointFileReader& operator=(const CheckpointFileReader&) = delete;
  const std::vector<SliceInfo>& slices() const { return slices_; }
  const std::filesystem::path& path() const { return path_; }
  int64_t attribute(const std::string& key) const;
  // The whole dataset, (slice.numel(),). A checksum mismatch throws UserError naming file and tensor.
  void read(const SliceInfo& slice, float* dst) const;
  // Scatters the dataset's elements that fall in global rows [row_begin, row_end) into `global`
  // (the whole global tensor, row-major); marks them in `covered` (same length) when given.
  void read_into_global(const SliceInfo& slice, float* global, int64_t row_begin, int64_t row_end,
                        std::vector<uint8_t>* covered) const;

 private:
  std::filesystem::path path_;
  H5Id file_;
  std::vector<SliceInfo> slices_;
};

// manifest.json: everything outside the rank files.
struct Manifest {
  int format_version = kCheckpointFormatVersion;
  int64_t step = 0, consumed_samples = 0, tokens = 0;
  int skipped_steps = 0;
  int tp = 1, pp = 1, dp = 1;
  std::string run_config_ini;
  nlohmann::json model_config;
  bool has_optimizer_state = true;
  std::optional<double> val_loss;  // the validation loss at this step, when the run evaluated then
  struct File {
    std::string name;
    uint64_t size = 0;
    uint32_t crc32 = 0;
  };
  std::vector<File> files;  // one per rank, in rank order

  nlohmann::json to_json() const;
  static Manifest from_json(const nlohmann::json& j, const std::string& source);
};

// step_00001000
std::string step_dir_name(int64_t step);
// Per-rank file name inside a step directory.
std::string rank_file_name(int rank);
uint32_t crc32_file(const std::filesystem::path& path);

// Writes manifest.json (files already listed with size and CRC32) into `tmp_dir`, fsyncs
// it and the directory, renames tmp_dir to final_dir. Throws UserError on any failure.
void finalize_checkpoint(const std::filesystem::path& tmp_dir, const std::filesystem::path& final_dir,
                         const Manifest& manifest);
// Points root/latest at `step_dir_name` (temp file + rename).
void write_latest(const std::filesystem::path& root, const std::string& step_dir_name);

// Which complete checkpoints survive a save: the newest `keep` (0: all) and, besides them, the
// `keep_best` with the lowest validation loss in their manifests (checkpoints without one never count
// as best). HF Trainer's save_total_limit with load_best_model_at_end, as two numbers.
struct Retention {
  int keep = 0;       // checkpoint.keep (its default lives in the run config)
  int keep_best = 0;  // checkpoint.keep_best
};
// Applies `retention` to root's complete step directories (and removes stale *.tmp directories). With
// keep_best > 0, points root/best at the lowest validation loss kept (ties: the earlier step), or
// removes a stale `best` when no checkpoint has one. Returns that checkpoint's name ("" for none).
std::string prune_checkpoints(const std::filesystem::path& root, Retention retention);

// The newest complete step directory (one with a manifest.json) in `root` whose step is below `before`;
// empty when there is none.
std::filesystem::path newest_checkpoint_before(const std::filesystem::path& root, int64_t before);

// "latest" / "best" / "auto" / a path → a step directory. For "latest", "best" and "auto", `root` is
// checkpoint.dir; "auto" returns "" when there is no checkpoint. A step directory, a root holding
// `latest`, or a pointer file itself (ROOT/latest, ROOT/best) all work.
std::filesystem::path resolve_checkpoint(const std::string& spec, const std::filesystem::path& root);

// A checkpoint directory opened for reading: manifest checked, every rank file present with its
// recorded size (a missing or truncated file is a UserError naming it).
class CheckpointDir {
 public:
  static CheckpointDir open(const std::filesystem::path& dir);
  const Manifest& manifest() const { return manifest_; }
  const std::filesystem::path& dir() const { return dir_; }
  const CheckpointFileReader& file(size_t i) const;  // opened on first use
  size_t num_files() const { return manifest_.files.size(); }
  // Every slice of every file: (file index, slice).
  std::vector<std::pair<size_t, SliceInfo>> slices_of(const std::string& group, const std::string& name) const;
  std::vector<std::string> tensor_names(const std::string& group) const;  // sorted, unique
  // Assembles global rows [row_begin, row_end) of tensor `name` (whole tensor: 0, global_shape[0]) into
  // `global` (the whole global tensor's length). Throws UserError when some element is in no file.
  void read_global(const std::string& group, const std::string& name, float* global, int64_t row_begin,
                   int64_t row_end) const;
  // Checks every file's size and CRC32 and reads every dataset (Fletcher32). Returns the problems.
  std::vector<std::string> verify() const;

 private:
  std::filesystem::path dir_;
  Manifest manifest_;
  mutable std::vector<std::unique_ptr<CheckpointFileReader>> files_;
};

}  // namespace iris::io
