#include "src/eval/loglik.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "io/checkpoint.h"
#include "src/core/check.h"
#include "src/model/checkpoint_weights.h"
#include "src/model/hf_weights.h"
#include "src/model/llama.h"
#include "src/train/pipeline_executor.h"

namespace fs = std::filesystem;

namespace iris::eval {

EvalModel::EvalModel(LlamaConfig config, const Topology& topo, const Communicators& comms)
    : config_(std::move(config)), topo_(topo), tp_(comms.tp.get()), pp_(comms.pp.get()), world_(comms.world.get()) {
  validate_layout(config_, topo.tp, topo.pp);
  layers_ = stage_layers(config_.num_hidden_layers, topo.pp, topo.pp_rank);
  table_ = ParamTable::build(config_, topo, layers_);
  params_.assign(table_.total_numel(), 0.0f);
}

EvalModel EvalModel::from_hf(const fs::path& dir, const Topology& topo, const Communicators& comms) {
  IRIS_USER_CHECK(fs::is_directory(dir), "--hf {}: not a directory (expected config.json and safetensors)",
                  dir.string());
  EvalModel m(LlamaConfig::load(dir / "config.json"), topo, comms);
  load_hf_weights(m.table_, dir, m.params_.data());
  return m;
}

EvalModel EvalModel::from_checkpoint(const fs::path& path, const Topology& topo, const Communicators& comms) {
  const fs::path dir = io::resolve_checkpoint(path.string(), "");
  const io::CheckpointDir ckpt = io::CheckpointDir::open(dir);
  EvalModel m(LlamaConfig::from_json(ckpt.manifest().model_config, (dir / "manifest.json").string()), topo, comms);
  load_checkpoint_weights(ckpt, m.table_, m.params_.data());
  return m;
}

namespace {

// One micro-batch: which requests (rows), at which padded length.
struct Chunk {
  std::vector<size_t> requests;
  int T = 0;
};

// The model reads tokens [begin, L-1) of each request: at most T_limit of them (harness: [-(max_length+1):][:-1]).
int input_begin(const ScoreRequest& r, int T_limit) {
  return static_cast<int>(std::max<int64_t>(0, static_cast<int64_t>(r.tokens.size()) - 1 - T_limit));
}
int input_length(const ScoreRequest& r, int T_limit) {
  return static_cast<int>(r.tokens.size()) - 1 - input_begin(r, T_limit);
}

void check_requests(const std::vector<ScoreRequest>& requests, const LlamaConfig& config) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    IRIS_CHECK(r.tokens.size() >= 2 && r.scored >= 1 && r.scored < static_cast<int>(r.tokens.size()),
               "request {}: {} tokens, {} scored", i, r.tokens.size(), r.scored);
    IRIS_USER_CHECK(r.scored <= config.max_position_embeddings,
                    "request {}: {} scored tokens exceed max_position_embeddings ({})", i, r.scored,
                    config.max_position_embeddings);
    for (int32_t t : r.tokens)
      IRIS_USER_CHECK(t >= 0 && t < config.vocab_size, "request {}: token id {} outside the vocabulary [0, {})", i, t,
                      config.vocab_size);
  }
}

// The micro-batches of every DP rank, the same on every rank. Requests whose model input is the same share
// one row, as the harness's group_by="contexts" does: the choices " A" … " D" of a MedMCQA question differ only
// in the last token, which the model never reads. The first of a group is its row's primary (its targets feed
// the stage's cross-entropy); sharing[primary] lists the others, scored from the row's logits. Rows are
// ordered longest first (as the harness orders them), then cut into chunks of `rows`.
struct ScorePlan {
  std::vector<std::vector<size_t>> sharing;
  std::vector<Chunk> chunks;
};
ScorePlan plan_rows(const std::vector<ScoreRequest>& requests, int rows, int T_limit) {
  ScorePlan plan;
  plan.sharing.resize(requests.size());
  std::map<std::vector<int32_t>, size_t> first_with_input;
  std::vector<size_t> order;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    std::vector<int32_t> input(r.tokens.begin() + input_begin(r, T_limit), r.tokens.end() - 1);
    auto [it, fresh] = first_with_input.emplace(std::move(input), i);
    if (fresh)
      order.push_back(i);
    else
      plan.sharing[it->second].push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return input_length(requests[a], T_limit) > input_length(requests[b], T_limit);
  });
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(rows)) {
    Chunk c;
    c.requests.assign(order.begin() + i, order.begin() + std::min(order.size(), i + rows));
    const int longest = input_length(requests[c.requests.front()], T_limit);
    c.T = std::max(longest, std::min(T_limit, (longest + 15) / 16 * 16));
    plan.chunks.push_back(std::move(c));
  }
  return plan;
}

// Fills the (B, T) arrays of micro-batch `c`: each row one primary's input, its targets, weight 1 on the
// scored positions; padding rows and positions are token 0 with weight 0.
void fill_batch(const std::vector<ScoreRequest>& requests, const Chunk& c, int T, int T_limit,
                std::vector<int32_t>& tokens, std::vector<int32_t>& targets, std::vector<float>& weights) {
  std::fill(tokens.begin(), tokens.end(), 0);
  std::fill(targets.begin(), targets.end(), 0);
  std::fill(weights.begin(), weights.end(), 0.0f);
  for (size_t row = 0; row < c.requests.size(); ++row) {
    const ScoreRequest& r = requests[c.requests[row]];
    const int begin = input_begin(r, T_limit), len = input_length(r, T_limit);
    for (int t = 0; t < len; ++t) {
      tokens[row * T + t] = r.tokens[begin + t];
      targets[row * T + t] = r.tokens[begin + t + 1];
    }
    for (int t = len - r.scored; t < len; ++t) weights[row * T + t] = 1.0f;
  }
}

}  // namespace

// One micro-batch's results, on the last stage (all its TP ranks call this together): the primaries' summed
// per-token losses, and the sharing requests' from the row's logits (their target logits summed over the
// vocabulary shards; one shard holds each, so the sum is exact). Only `reports` writes `result`.
void EvalModel::collect(const std::vector<ScoreRequest>& requests, const std::vector<std::vector<size_t>>& sharing,
                        const std::vector<size_t>& chunk, int T, const StageActivations& acts, int64_t VL,
                        int64_t v0, bool reports, std::vector<double>& result) const {
  const int T_limit = config_.max_position_embeddings;
  std::vector<float> shared_logit;
  for (size_t row = 0; row < chunk.size(); ++row)
    for (size_t other : sharing[chunk[row]]) {
      const ScoreRequest& r = requests[other];
      const int begin = input_begin(r, T_limit), len = input_length(r, T_limit);
      for (int t = len - r.scored; t < len; ++t) {
        const int64_t y = r.tokens[begin + t + 1] - v0;
        shared_logit.push_back(y >= 0 && y < VL ? acts.logits[(row * T + t) * VL + y] : 0.0f);
      }
    }
  if (tp_ && tp_->size() > 1 && !shared_logit.empty())
    tp_->all_reduce(shared_logit.data(), shared_logit.size(), ReduceOp::Sum);
  if (!reports) return;
  size_t k = 0;
  for (size_t row = 0; row < chunk.size(); ++row) {
    const ScoreRequest& r = requests[chunk[row]];
    const int len = input_length(r, T_limit);
    double nll = 0.0;
    for (int t = len - r.scored; t < len; ++t) nll += acts.losses[row * T + t];
    result[chunk[row]] = -nll;
    for (size_t other : sharing[chunk[row]]) {
      double other_nll = 0.0;
      for (int t = len - requests[other].scored; t < len; ++t, ++k) {  // as cpu::xent_losses
        const size_t n = row * T + t;
        other_nll += std::log(acts.xent_sumexp[n]) + acts.xent_max[n] - shared_logit[k];
      }
      result[other] = -other_nll;
    }
  }
}

std::vector<double> EvalModel::score(const std::vector<ScoreRequest>& requests, int rows) const {
  IRIS_USER_CHECK(rows >= 1, "--batch must be at least 1, got {}", rows);
  check_requests(requests, config_);
  const int T_limit = config_.max_position_embeddings;
  const ScorePlan plan = plan_rows(requests, rows, T_limit);
  std::vector<const Chunk*> mine;  // this DP rank's micro-batches: j % dp, so what is batched never depends on dp
  for (size_t j = 0; j < plan.chunks.size(); ++j)
    if (static_cast<int>(j % topo_.dp) == topo_.dp_rank) mine.push_back(&plan.chunks[j]);
  std::vector<double> result(requests.size(), 0.0);
  const bool reports = topo_.is_last_stage() && topo_.tp_rank == 0;  // one rank per DP replica adds its results
  // Chunks are ordered by T, so each T is one contiguous group: one stage and executor per group.
  for (size_t g = 0; g < mine.size();) {
    size_t end = g;
    while (end < mine.size() && mine[end]->T == mine[g]->T) ++end;
    const int T = mine[g]->T;
    const size_t N = static_cast<size_t>(rows) * T;
    LlamaStage stage(config_, topo_, table_, layers_, rows, T, tp_);
    PipelineExecutor executor(stage, topo_, pp_, 1);
    std::vector<int32_t> tokens(N), targets(N);
    std::vector<float> weights(N);
    auto batch = [&](int m) {
      fill_batch(requests, *mine[g + m], T, T_limit, tokens, targets, weights);
      MicroBatch mb;
      mb.tokens = tokens.data();
      mb.targets = targets.data();
      mb.loss_weight = weights.data();
      return mb;
    };
    auto on_forward = [&](int m, const StageActivations& acts) {
      if (topo_.is_last_stage())
        collect(requests, plan.sharing, mine[g + m]->requests, T, acts, stage.vocab_local(), stage.vocab_start(),
                reports, result);
    };
    executor.forward_only(params_.data(), static_cast<int>(end - g), batch, {}, on_forward);
    g = end;
  }
  // Each request was reported by exactly one rank (others hold 0), so the sum is exact.
  if (world_ && world_->size() > 1) world_->all_reduce(result.data(), result.size(), ReduceOp::Sum);
  return result;
}

}  // namespace iris::eval
