#include "src/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/tokenizer.h"
#include "src/core/check.h"
#include "src/core/log.h"
#include "src/model/hf_weights.h"

namespace iris {
namespace fs = std::filesystem;

Trainer::Trainer(RunConfig config, int world, int rank) : config_(std::move(config)) {
  config_.validate();
  model_config_ = LlamaConfig::load(config_.model.config);
  topo_ = Topology::make(world, rank, config_.parallel.tp, config_.parallel.pp);
  validate_layout(model_config_, topo_.tp, topo_.pp);
  IRIS_USER_CHECK(topo_.pp == 1 && topo_.dp == 1,
                  "this build trains with parallel.pp = 1 and one data-parallel rank (got {}); pipeline and data "
                  "parallelism are not implemented yet",
                  topo_.describe());
  layers_ = stage_layers(model_config_.num_hidden_layers, topo_.pp, topo_.pp_rank);
  table_ = ParamTable::build(model_config_, topo_, layers_);

  if (!config_.data.tokenizer.empty()) {
    io::Tokenizer tok = io::Tokenizer::load(config_.data.tokenizer);
    IRIS_USER_CHECK(tok.vocab_size() <= model_config_.vocab_size,
                    "tokenizer {} has {} pieces but model {} has vocab_size {}; use a matching tokenizer or model",
                    config_.data.tokenizer, tok.vocab_size(), model_config_.source, model_config_.vocab_size);
  }
  loader_ = std::make_unique<PretrainLoader>(config_.data.path, config_.train.seq_len, config_.train.seed,
                                             model_config_.vocab_size);
  global_batch_ = static_cast<int64_t>(config_.train.micro_batch) * config_.train.grad_accum * topo_.dp;

  params_.assign(table_.total_numel(), 0.0f);
  grads_.assign(table_.total_numel(), 0.0f);
  if (config_.model.hf_dir.empty()) {
    table_.initialize(params_.data(), config_.train.seed);
  } else {
    load_hf_weights(table_, config_.model.hf_dir, params_.data());
  }
  comms_ = make_mpi_communicators(topo_, model_config_.tie_word_embeddings);
  stage_ = std::make_unique<LlamaStage>(model_config_, topo_, table_, layers_, config_.train.micro_batch,
                                        config_.train.seq_len, comms_.tp.get());
  acts_ = stage_->make_activations();
  AdamWConfig adam{config_.optim.beta1, config_.optim.beta2, config_.optim.eps, config_.optim.weight_decay};
  optimizer_ = std::make_unique<AdamW>(table_, adam, 0, table_.total_numel());
  schedule_ = CosineSchedule{config_.optim.lr, config_.optim.min_lr, config_.optim.warmup_steps,
                             config_.optim.decay_steps > 0 ? config_.optim.decay_steps : config_.train.steps};

  // Everything is valid: only now touch the output directory.
  if (topo_.rank == 0) {
    fs::create_directories(config_.output.dir);
    std::ofstream ini(fs::path(config_.output.dir) / "config.ini");
    ini << config_.to_ini();
    IRIS_USER_CHECK(ini.good(), "cannot write {}/config.ini (is output.dir writable?)", config_.output.dir);
    metrics_ = std::make_unique<MetricsWriter>((fs::path(config_.output.dir) / "metrics.jsonl").string());
  }
  describe_startup();
}

Trainer::~Trainer() = default;

void Trainer::describe_startup() const {
  if (topo_.rank != 0) return;
  spdlog::info("resolved configuration:\n{}", config_.to_ini());
  const double MiB = 1024.0 * 1024.0;
  spdlog::info("model {}: {} parameters ({} layers, hidden {}, heads {}/{} kv, vocab {})", model_config_.source,
               model_config_.num_parameters(), model_config_.num_hidden_layers, model_config_.hidden_size,
               model_config_.num_attention_heads, model_config_.num_key_value_heads, model_config_.vocab_size);
  spdlog::info("layout {}; rank 0 holds {} parameters: weights {:.1f} MiB, gradients {:.1f} MiB, optimizer state {:.1f} MiB",
               topo_.describe(), table_.total_numel(), table_.total_numel() * 4 / MiB,
               table_.total_numel() * 4 / MiB, optimizer_->state_bytes() / MiB);
  spdlog::info("data {}: {} tokens, {} samples of {} tokens; global batch {} samples = {} tokens per step",
               config_.data.path, loader_->num_tokens(), loader_->num_samples(), config_.train.seq_len, global_batch_,
               global_batch_ * config_.train.seq_len);
}

StepMetrics Trainer::step(int step) {
  const auto start = std::chrono::steady_clock::now();
  const int B = config_.train.micro_batch, T = config_.train.seq_len;
  std::fill(grads_.begin(), grads_.end(), 0.0f);

  // Pretraining: every token is trained, so each token's weight is 1 / (tokens in the global batch)
  // and the summed loss is the global-batch mean.
  loss_weight_.assign(static_cast<size_t>(B) * T, 1.0f / static_cast<float>(global_batch_ * T));
  const uint64_t batch_first = static_cast<uint64_t>(step - 1) * global_batch_ +
                               static_cast<uint64_t>(topo_.dp_rank) * (global_batch_ / topo_.dp);
  double loss = 0.0;
  for (int m = 0; m < config_.train.grad_accum; ++m) {
    loader_->fill(batch_first + static_cast<uint64_t>(m) * B, B, batch_);
    MicroBatch mb{batch_.tokens.data(), batch_.targets.data(), loss_weight_.data(), nullptr, nullptr};
    loss += stage_->forward(*acts_, params_.data(), mb, nullptr);
    stage_->backward(*acts_, params_.data(), grads_.data(), mb, nullptr, nullptr);
  }

  // Global gradient norm: sharded tensors summed over the TP group, replicated ones counted once.
  double sumsq = grad_sum_squares(table_, grads_.data(), 0, grads_.size(), /*skip_replicated=*/true);
  double replicated = grad_sum_squares(table_, grads_.data(), 0, grads_.size(), false) - sumsq;
  if (topo_.tp_rank == 0) sumsq += replicated;
  comms_.model_parallel->all_reduce(&sumsq, 1, ReduceOp::Sum);
  const double grad_norm = std::sqrt(sumsq);

  StepMetrics m;
  m.step = step;
  m.loss = loss;
  m.grad_norm = grad_norm;
  m.lr = schedule_.at(step);
  m.skipped = !std::isfinite(loss) || !std::isfinite(grad_norm);
  if (m.skipped) {
    ++skipped_steps_;
  } else {
    const double clip = config_.optim.grad_clip;
    const float scale = clip > 0 && grad_norm > clip ? static_cast<float>(clip / grad_norm) : 1.0f;
    optimizer_->update(params_.data(), grads_.data(), m.lr, step - skipped_steps_, scale);
  }
  m.skipped_steps = skipped_steps_;
  tokens_ += global_batch_ * T;
  m.tokens = tokens_;
  m.step_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  elapsed_s_ += m.step_time_s;
  m.elapsed_s = elapsed_s_;
  m.tokens_per_s = global_batch_ * T / m.step_time_s;
  return m;
}

std::vector<StepMetrics> Trainer::run() {
  std::vector<StepMetrics> all;
  for (int s = 1; s <= config_.train.steps; ++s) {
    StepMetrics m = step(s);
    if (metrics_) metrics_->write(m);
    if (topo_.rank == 0 && (s % config_.train.log_every == 0 || s == 1 || s == config_.train.steps))
      spdlog::info("{}", progress_line(m, config_.train.steps));
    all.push_back(m);
  }
  return all;
}

}  // namespace iris
