#include "src/train/checkpoint.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <utility>

#include "src/core/check.h"
#include "src/core/log.h"

namespace iris {
namespace fs = std::filesystem;

namespace {

// The two AdamW moments as the checkpoint names their groups.
constexpr std::pair<StatePart, const char*> kMomentGroups[] = {{StatePart::ExpAvg, "exp_avg"},
                                                               {StatePart::ExpAvgSq, "exp_avg_sq"}};

const char* rule_name(ShardRule r) {
  switch (r) {
    case ShardRule::Replicated: return "replicated";
    case ShardRule::Column: return "column";
    case ShardRule::Row: return "row";
    case ShardRule::Vocab: return "vocab";
  }
  return "?";
}

int64_t row_elements(const ParamEntry& e) { return e.local_shape.size() > 1 ? e.local_shape[1] : 1; }

}  // namespace

io::SliceInfo checkpoint_slice(const ParamEntry& e, const std::string& group, int64_t flat_begin, int64_t flat_end) {
  io::SliceInfo s;
  s.group = group;
  s.name = e.name;
  s.rule = rule_name(e.rule);
  s.global_shape = e.global_shape;
  s.block_shape = e.local_shape;
  s.block_offset.assign(e.global_shape.size(), 0);
  if (e.rule == ShardRule::Row) s.block_offset[1] = e.shard_begin;
  else s.block_offset[0] = e.shard_begin;
  s.valid_rows = e.valid_rows;
  s.flat_begin = flat_begin;
  s.flat_end = flat_end;
  return s;
}

io::SliceInfo weight_slice(const ParamEntry& e) { return checkpoint_slice(e, "weights", 0, e.valid_rows * row_elements(e)); }

std::pair<int64_t, int64_t> rows_needed(const ParamEntry& e) {
  if (e.rule == ShardRule::Column || e.rule == ShardRule::Vocab) return {e.shard_begin, e.shard_begin + e.valid_rows};
  return {0, e.global_shape[0]};
}

void write_rank_slices(io::CheckpointFileWriter& file, const ParamTable& table, StateStream& state,
                       bool optimizer_state, bool write_weights) {
  std::vector<float> block;  // one tensor's part at a time
  std::exception_ptr failed;
  const auto write = [&](const io::SliceInfo& s) {
    if (failed) return;
    try {
      file.write(s, block.data());
    } catch (...) {
      failed = std::current_exception();
    }
  };
  const auto [moment_begin, moment_end] = state.moment_range();
  for (const auto& e : table.entries()) {
    const io::SliceInfo w = weight_slice(e);
    block.resize(static_cast<size_t>(w.numel()));
    state.gather_weights(e.offset, block.size(), block.data());  // every DP rank takes part
    if (write_weights) write(w);
    if (!optimizer_state) continue;
    const size_t b = std::max(e.offset, moment_begin), f = std::min(e.offset + e.numel, moment_end);
    if (b >= f) continue;
    auto s = checkpoint_slice(e, "exp_avg", static_cast<int64_t>(b - e.offset), static_cast<int64_t>(f - e.offset));
    block.resize(f - b);
    for (const auto& [part, group] : kMomentGroups) {
      s.group = group;
      state.read_moments(part, b, f - b, block.data());
      write(s);
    }
  }
  if (failed) std::rethrow_exception(failed);
}

namespace {

// One rank's part of a save, summed over the world: one slot per rank of (failed, bytes, file size, CRC32).
struct RankOutcomes {
  explicit RankOutcomes(int world) : v(4 * static_cast<size_t>(world), 0.0) {}
  std::vector<double> v;
  double& failed(int r) { return v[4 * r]; }
  double& bytes(int r) { return v[4 * r + 1]; }
  double& size(int r) { return v[4 * r + 2]; }
  double& crc(int r) { return v[4 * r + 3]; }
};

// Rank 0: a fresh step_X.tmp/ under root. Returns the error ("" on success).
std::string prepare_tmp_dir(const fs::path& root, const fs::path& tmp_dir) {
  try {
    fs::create_directories(root);
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);
    fs::create_directories(tmp_dir);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Every rank: its HDF5 file in tmp_dir, its outcome in its slot. Returns the error ("" on success).
std::string write_rank_file(const CheckpointState& st, const TrainProgress& progress, const fs::path& tmp_dir,
                            RankOutcomes& outcome) {
  const int rank = st.topo.rank;
  try {
    const fs::path path = tmp_dir / io::rank_file_name(rank);
    io::CheckpointFileWriter file(path);
    file.set_attribute("rank", rank);
    file.set_attribute("tp_rank", st.topo.tp_rank);
    file.set_attribute("pp_rank", st.topo.pp_rank);
    file.set_attribute("dp_rank", st.topo.dp_rank);
    file.set_attribute("step", progress.step);
    write_rank_slices(file, st.table, st.state, st.optimizer_state, st.topo.dp_rank == 0);
    const uint64_t bytes = file.bytes_written();
    file.close();
    outcome.bytes(rank) = static_cast<double>(bytes);
    outcome.size(rank) = static_cast<double>(fs::file_size(path));
    outcome.crc(rank) = static_cast<double>(io::crc32_file(path));
    return "";
  } catch (const std::exception& e) {
    outcome.failed(rank) = 1.0;
    spdlog::error("checkpoint step {}: rank {} could not write its file: {}", progress.step, rank, e.what());
    return e.what();
  }
}

// Rank 0, once every rank file is written: the manifest, the rename, `latest`, then the retention rule.
void finalize_on_rank0(const CheckpointState& st, const TrainProgress& progress, const fs::path& root,
                       const fs::path& tmp_dir, const fs::path& final_dir, RankOutcomes& outcome,
                       io::Retention retention, std::optional<double> val_loss) {
  io::Manifest m;
  m.step = progress.step;
  m.consumed_samples = progress.consumed_samples;
  m.tokens = progress.tokens;
  m.skipped_steps = progress.skipped_steps;
  m.tp = st.topo.tp;
  m.pp = st.topo.pp;
  m.dp = st.topo.dp;
  m.run_config_ini = st.run_config_ini;
  m.model_config = st.model.raw;
  m.has_optimizer_state = st.optimizer_state;
  m.val_loss = val_loss;
  for (int r = 0; r < st.topo.world; ++r)
    m.files.push_back({io::rank_file_name(r), static_cast<uint64_t>(outcome.size(r)), static_cast<uint32_t>(outcome.crc(r))});
  io::finalize_checkpoint(tmp_dir, final_dir, m);
  io::write_latest(root, final_dir.filename().string());
  io::prune_checkpoints(root, retention);
}

}  // namespace

SaveReport save_checkpoint(const CheckpointState& st, const TrainProgress& progress, const fs::path& root,
                           io::Retention retention, std::optional<double> val_loss) {
  Comm& world = *st.world;
  world.barrier();
  const auto start = std::chrono::steady_clock::now();
  const std::string name = io::step_dir_name(progress.step);
  const fs::path final_dir = root / name, tmp_dir = root / (name + ".tmp");
  const int W = st.topo.world, rank = st.topo.rank;

  RankOutcomes outcome(W);
  std::string error = rank == 0 ? prepare_tmp_dir(root, tmp_dir) : "";
  double prepared = error.empty() ? 0.0 : 1.0;
  world.all_reduce(&prepared, 1, ReduceOp::Max);
  if (prepared == 0.0) error = write_rank_file(st, progress, tmp_dir, outcome);
  else if (rank == 0) outcome.failed(0) = 1.0;
  world.all_reduce(outcome.v.data(), outcome.v.size(), ReduceOp::Sum);

  std::vector<int> failed;
  for (int r = 0; r < W; ++r)
    if (outcome.failed(r) != 0.0) failed.push_back(r);
  // Test hook for the atomicity test: IRIS_CHECKPOINT_KILL=STEP SIGKILLs rank 0 once every rank file
  // of that step is written, before the manifest and the rename (the worst moment to die).
  if (const char* kill_at = std::getenv("IRIS_CHECKPOINT_KILL"); kill_at && rank == 0 && std::atoll(kill_at) == progress.step)
    std::raise(SIGKILL);
  double finalize_failed = 0.0;
  if (rank == 0) {
    try {
      if (failed.empty()) finalize_on_rank0(st, progress, root, tmp_dir, final_dir, outcome, retention, val_loss);
    } catch (const std::exception& e) {
      error = e.what();
      finalize_failed = 1.0;
    }
    std::error_code ec;
    if (!failed.empty() || finalize_failed != 0.0) fs::remove_all(tmp_dir, ec);
  }
  world.all_reduce(&finalize_failed, 1, ReduceOp::Max);
  IRIS_USER_CHECK(failed.empty() && finalize_failed == 0.0,
                  "checkpoint at step {} into {} failed ({}){}; the previous checkpoints are untouched",
                  progress.step, root.string(),
                  failed.empty() ? "writing the manifest" : fmt::format("on rank(s) {}", fmt::join(failed, ", ")),
                  error.empty() ? "" : ": " + error);
  SaveReport report;
  report.dir = final_dir;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int r = 0; r < W; ++r) report.bytes += static_cast<uint64_t>(outcome.bytes(r));
  return report;
}

void check_model_matches(const io::Manifest& manifest, const LlamaConfig& model, const std::string& checkpoint,
                         const std::string& model_source) {
  LlamaConfig saved;
  try {
    saved = LlamaConfig::from_json(manifest.model_config, checkpoint + "/manifest.json (model_config)");
  } catch (const UserError& e) {
    throw UserError(fmt::format("checkpoint {}: its model config is invalid: {}", checkpoint, e.what()));
  }
  auto same = [&](const char* key, long long a, long long b) {
    IRIS_USER_CHECK(a == b,
                    "checkpoint {} was saved for a different model: {} = {} there but {} in {}; load it with the "
                    "model config it was trained with",
                    checkpoint, key, a, b, model_source);
  };
  same("vocab_size", saved.vocab_size, model.vocab_size);
  same("hidden_size", saved.hidden_size, model.hidden_size);
  same("intermediate_size", saved.intermediate_size, model.intermediate_size);
  same("num_hidden_layers", saved.num_hidden_layers, model.num_hidden_layers);
  same("num_attention_heads", saved.num_attention_heads, model.num_attention_heads);
  same("num_key_value_heads", saved.num_key_value_heads, model.num_key_value_heads);
  same("head_dim", saved.head_dim, model.head_dim);
  same("tie_word_embeddings", saved.tie_word_embeddings, model.tie_word_embeddings);
}

TrainProgress load_checkpoint(const CheckpointState& st, const fs::path& dir) {
  const io::CheckpointDir ckpt = io::CheckpointDir::open(dir);
  const io::Manifest& m = ckpt.manifest();
  check_model_matches(m, st.model, dir.string(), st.model.source);
  std::vector<float> global, block;  // one global tensor and this rank's part of it at a time
  const auto [moment_begin, moment_end] = st.state.moment_range();
  for (const auto& e : st.table.entries()) {
    const auto slices = ckpt.slices_of("weights", e.name);
    IRIS_USER_CHECK(!slices.empty(), "checkpoint {} has no weights for tensor {}", dir.string(), e.name);
    for (const auto& [i, s] : slices)
      IRIS_USER_CHECK(s.global_shape == e.global_shape,
                      "checkpoint {}: tensor {} in {} has shape [{}] but the model expects [{}]", dir.string(), e.name,
                      m.files[i].name, fmt::join(s.global_shape, ", "), fmt::join(e.global_shape, ", "));
    int64_t n = 1;
    for (int64_t d : e.global_shape) n *= d;
    global.assign(static_cast<size_t>(n), 0.0f);
    const auto [row_begin, row_end] = rows_needed(e);
    if (row_begin < row_end) ckpt.read_global("weights", e.name, global.data(), row_begin, row_end);
    // This rank's block (a block of vocab padding only reads nothing and stays zero).
    block.resize(e.numel);
    for (size_t i = 0; i < e.numel; ++i) {
      const int64_t g = e.global_index(i);
      block[i] = g < 0 || row_begin >= row_end ? 0.0f : global[g];
    }
    st.state.write(StatePart::Weights, e.offset, e.numel, block.data());
    if (!st.optimizer_state || !m.has_optimizer_state) continue;
    const size_t b = std::max(e.offset, moment_begin), f = std::min(e.offset + e.numel, moment_end);
    if (b >= f) continue;
    block.resize(f - b);
    for (const auto& [part, group] : kMomentGroups) {
      if (row_begin < row_end) ckpt.read_global(group, e.name, global.data(), row_begin, row_end);
      for (size_t i = b; i < f; ++i) {
        const int64_t g = e.global_index(i - e.offset);
        block[i - b] = g < 0 ? 0.0f : global[g];
      }
      st.state.write(part, b, f - b, block.data());
    }
  }
  TrainProgress p;
  p.step = m.step;
  p.skipped_steps = m.skipped_steps;
  p.tokens = m.tokens;
  p.consumed_samples = m.consumed_samples;
  return p;
}

}  // namespace iris
