// Summed log-probabilities of token continuations, the one quantity iris-eval's mcq and ppl tasks need. A
// request is a token sequence whose last `scored` tokens are scored given everything before them, as
// lm-evaluation-harness's loglikelihood requests are (the model reads tokens[0, L-1) and is scored on
// tokens[L-scored, L)). The forward is the training one (LlamaStage through the pipeline executor), so the
// model is split over TP/PP exactly as in training and micro-batches are spread over DP ranks; every rank
// gets every request's result.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/model/llama_config.h"
#include "src/model/llama.h"
#include "src/model/param_table.h"

namespace iris::eval {

struct ScoreRequest {
  std::vector<int32_t> tokens;  // (L,) L >= 2
  int scored = 1;               // 1 <= scored < L: the trailing tokens whose log-probabilities are summed
};

class EvalModel {
 public:
  // An HF directory (config.json + safetensors) or an Iris checkpoint (step_* or a root with `latest`, any
  // saving layout), read at this rank's (tp, pp) block. comms: make_mpi_communicators(topo) (null
  // members at world 1).
  static EvalModel from_hf(const std::filesystem::path& dir, const Topology& topo, const Communicators& comms);
  static EvalModel from_checkpoint(const std::filesystem::path& path, const Topology& topo,
                                   const Communicators& comms);

  // Σ log p(token) over each request's scored tokens, in request order, identical on every rank.
  // Requests longer than max_position_embeddings + 1 tokens are cut from the left as the harness does
  // (the scored tokens must fit). Micro-batches hold up to `rows` requests of similar length (sorted
  // longest first, padded to a multiple of 16 tokens); micro-batch j runs on DP rank j % dp, so what is
  // batched together never depends on dp. Requests with the same model input (tokens[0, L-1)) share one
  // row, as the harness's group_by="contexts" does (the choices of a lettered question differ in their last
  // token only): the others' log-probabilities come from that row's logits.
  std::vector<double> score(const std::vector<ScoreRequest>& requests, int rows) const;

  const LlamaConfig& config() const { return config_; }
  const Topology& topology() const { return topo_; }

 private:
  EvalModel(LlamaConfig config, const Topology& topo, const Communicators& comms);
  void collect(const std::vector<ScoreRequest>& requests, const std::vector<std::vector<size_t>>& sharing,
               const std::vector<size_t>& chunk, int T, const StageActivations& acts, int64_t V_local,
               int64_t vocab_start, bool reports, std::vector<double>& result) const;
  LlamaConfig config_;
  Topology topo_;
  Comm *tp_ = nullptr, *pp_ = nullptr, *world_ = nullptr;
  StageLayers layers_;
  ParamTable table_;
  std::vector<float> params_;  // this rank's flat buffer (table_ layout)
};

}  // namespace iris::eval
