#include "src/train/trainer.h"

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "src/core/check.h"
#include "src/core/log.h"
#include "src/model/hf_weights.h"
#include "src/plan/plan.h"
#include "src/core/exit_codes.h"
#include "src/train/stop_signals.h"

namespace iris {
namespace fs = std::filesystem;

namespace {

// The state stream's staging buffer unless IRIS_STAGING_BYTES says otherwise (a test hook): big enough that
// a piece's copy costs far more than its call, small against any model's state.
constexpr size_t kDefaultStagingBytes = size_t{64} << 20;

std::vector<int> parse_stage_layers(const std::string& text) {
  std::vector<int> counts;
  if (text.empty()) return counts;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    try {
      counts.push_back(std::stoi(item));
    } catch (const std::exception&) {
      throw UserError(fmt::format("parallel.stage_layers: '{}' is not a comma-separated list of layer counts", text));
    }
  }
  return counts;
}

double wall_clock_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Test hook for the no-hang tests: IRIS_FAULT="RANK:STEP:throw|exit" makes that rank fail at the
// start of that step, by an exception or by leaving the process at once.
void maybe_inject_fault(int rank, int step) {
  const char* spec = std::getenv("IRIS_FAULT");
  if (!spec) return;
  int r = -1, s = -1;
  char mode[16] = {0};
  if (std::sscanf(spec, "%d:%d:%15s", &r, &s, mode) != 3 || r != rank || s != step) return;
  if (std::string(mode) == "exit") std::_Exit(3);
  throw Error(fmt::format("injected fault (IRIS_FAULT={}) at step {}", spec, step));
}

// Test hook for the mid-step stop tests: IRIS_TEST_SIGNAL="RANK:STEP:MICRO_BATCH[:eval]" makes that
// rank raise SIGUSR1 when it takes that micro-batch of that step (or of the evaluation after it). The
// variable is read once; a micro-batch costs one comparison.
void maybe_raise_test_signal(int rank, int step, int micro_batch, bool eval) {
  struct Spec {
    int rank = -1, step = -1, micro_batch = -1;
    bool eval = false;
  };
  static const Spec spec = [] {
    Spec s;
    const char* text = std::getenv("IRIS_TEST_SIGNAL");
    char phase[8] = {0};
    if (text && std::sscanf(text, "%d:%d:%d:%7s", &s.rank, &s.step, &s.micro_batch, phase) >= 3)
      s.eval = std::string(phase) == "eval";
    else
      s.rank = -1;
    return s;
  }();
  if (rank == spec.rank && step == spec.step && micro_batch == spec.micro_batch && eval == spec.eval)
    std::raise(SIGUSR1);
}

}  // namespace

// Start-up, step by step: each step needs the ones before it (the model's layout decides the parameter
// table, the data decide the run's steps, the backend holds the weights a checkpoint loads into).
Trainer::Trainer(RunConfig config, int world, int rank) : config_(std::move(config)) {
  set_up_model(world, rank);
  open_data();
  set_up_backend();
  start_clock();
  open_outputs();
  describe_startup();
}

// The run config and the model config checked, the layout and this rank's parameter table.
void Trainer::set_up_model(int world, int rank) {
  config_.validate();
  divergence_ = DivergenceGuard({config_.train.max_consecutive_skipped, config_.train.max_skipped_fraction});
  model_config_ = LlamaConfig::load(config_.model.config);
  topo_ = Topology::make(world, rank, config_.parallel.tp, config_.parallel.pp);
  validate_layout(model_config_, topo_.tp, topo_.pp);
  check_sliding_window(model_config_, config_.train.seq_len, "train.seq_len");
  layers_ = stage_layers(model_config_.num_hidden_layers, topo_.pp, topo_.pp_rank,
                         parse_stage_layers(config_.parallel.stage_layers));
  table_ = ParamTable::build(model_config_, topo_, layers_);
}

// The tokenizer checked against the vocabulary, the data sources, and the run's length.
void Trainer::open_data() {
  if (!config_.data.tokenizer.empty()) {
    io::Tokenizer tok = io::Tokenizer::load(config_.data.tokenizer);
    IRIS_USER_CHECK(tok.vocab_size() <= model_config_.vocab_size,
                    "tokenizer {} has {} pieces but model {} has vocab_size {}; use a matching tokenizer or model",
                    config_.data.tokenizer, tok.vocab_size(), model_config_.source, model_config_.vocab_size);
  }
  data_ = make_data_sources(config_, model_config_.vocab_size);
  global_batch_ = static_cast<int64_t>(config_.train.micro_batch) * config_.train.grad_accum * topo_.dp;
  plan_ = RunPlan{config_.train.steps, 0, 0, global_batch_};
  if (config_.train.epochs > 0) {  // the steps follow from the data: the same on every rank and after a resume
    plan_ = plan_from_epochs(data_.train->num_samples(), config_.train.epochs, global_batch_);
    config_.train.steps = static_cast<int>(plan_.steps);
  }
}

// Communicators, the ZeRO-1 layout, the training backend with its initial weights, the LR schedule.
void Trainer::set_up_backend() {
  comms_ = make_mpi_communicators(topo_, model_config_.tie_word_embeddings, config_.parallel.timeout_s);
  const size_t bucket = static_cast<size_t>(config_.parallel.bucket_mb * 1024 * 1024 / sizeof(float));
  layout_ = Zero1Layout::make(table_, topo_.dp, topo_.dp_rank, bucket, config_.overlaps_grad_reduce());
  AdamWConfig adam{config_.optim.beta1, config_.optim.beta2, config_.optim.eps, config_.optim.weight_decay};
  backend_ = make_training_backend(
      config_.train.device,
      TrainingBackendSetup{model_config_, topo_, table_, layers_, config_.train.micro_batch, config_.train.seq_len,
                           config_.train.grad_accum, layout_, adam,
                           // Which shard elements count in the global gradient norm (replicated tensors once
                           // per TP group, the tied embedding once).
                           grad_norm_ranges(table_, topo_, layout_.shard_begin, layout_.shard_end), comms_,
                           config_.parallel.comm, config_.parallel.timeout_s, config_.train.recompute,
                           config_.grad_dtype(), staging_elements_from_env(kDefaultStagingBytes)});
  state_ = std::make_unique<StateStream>(backend_->state(), topo_.dp > 1 ? comms_.dp.get() : nullptr);
  initialize_weights();
  if (config_.train.peak_tflops > 0)
    peak_tflops_ = config_.train.peak_tflops;
  else
    peak_tflops_ = backend_->peak_tflops();
  schedule_ = config_.lr_schedule(config_.train.steps);
  batches_.resize(config_.train.grad_accum);
}

void Trainer::start_clock() {
  // The time budget counts from here; the Slurm job's end, when known, bounds it too.
  install_stop_signal_handlers();
  const double now = wall_clock_s();
  if (const double limit = config_.time_limit_seconds(); limit > 0) deadline_ = now + limit;
  if (const double job_end = slurm_job_end_time(); job_end > 0) deadline_ = deadline_ > 0 ? std::min(deadline_, job_end) : job_end;
}

void Trainer::open_outputs() {
  // Everything is valid on every rank: only now touch the output directory.
  run_lock_ = RunLock::hold_for_run(config_.checkpoint.dir, *comms_.world, topo_.rank);  // refused: every rank throws
  maybe_load_checkpoint();
  device_peak_mib_ = backend_->device_memory_in_use_mib();
  comms_.world->barrier();
  if (topo_.rank == 0) {
    fs::create_directories(config_.output.dir);
    std::ofstream ini(fs::path(config_.output.dir) / "config.ini");
    ini << config_.to_ini();
    IRIS_USER_CHECK(ini.good(), "cannot write {}/config.ini (is output.dir writable?)", config_.output.dir);
    metrics_ = std::make_unique<MetricsWriter>(
        (fs::path(config_.output.dir) / "metrics.jsonl").string(), progress_.step,
        config_.output.tensorboard ? (fs::path(config_.output.dir) / "tb").string() : std::string());
  }
}

void Trainer::initialize_weights() {
  if (!config_.model.hf_dir.empty()) {
    std::vector<float> block;  // this rank's block of one tensor
    read_hf_weights(table_, config_.model.hf_dir, [&](const ParamEntry& e, const float* global) {
      block.resize(e.numel);
      for (size_t i = 0; i < e.numel; ++i) {
        const int64_t g = e.global_index(i);
        block[i] = g < 0 ? 0.0f : global[g];
      }
      state_->write(StatePart::Weights, e.offset, e.numel, block.data());
    });
  } else if (!config_.model.init_checkpoint.empty()) {
    // Weights only: an SFT run starts from a pretraining checkpoint with fresh optimizer and data position.
    const fs::path dir = io::resolve_checkpoint(config_.model.init_checkpoint, "");
    load_checkpoint(checkpoint_state(false), dir);
    if (topo_.rank == 0) spdlog::info("initial weights from checkpoint {} (weights only)", dir.string());
  } else {
    backend_->initialize(config_.train.seed);
  }
}

Trainer::~Trainer() = default;

CheckpointState Trainer::checkpoint_state(bool optimizer_state) {
  return CheckpointState{model_config_, topo_, table_, *state_, optimizer_state, comms_.world.get(), config_.to_ini()};
}

void Trainer::maybe_load_checkpoint() {
  const std::string& spec = config_.checkpoint.load;
  if (spec.empty()) return;
  const fs::path dir = io::resolve_checkpoint(spec, config_.checkpoint.dir);
  if (dir.empty()) {
    if (topo_.rank == 0) spdlog::info("checkpoint.load=auto: no checkpoint in {}, starting fresh", config_.checkpoint.dir);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  progress_ = load_checkpoint(checkpoint_state(), dir);
  comms_.world->barrier();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  IRIS_USER_CHECK(progress_.step <= config_.train.steps,
                  "checkpoint {} is at step {}, past train.steps = {}; raise train.steps to continue", dir.string(),
                  progress_.step, config_.train.steps);
  if (topo_.rank == 0)
    spdlog::info("resumed from {} at step {} ({} samples consumed, {} skipped steps) in {:.2f} s", dir.string(),
                 progress_.step, progress_.consumed_samples, progress_.skipped_steps, seconds);
}

void Trainer::save_checkpoint() {
  // The manifest records this step's validation loss when the step was evaluated (checkpoint.keep_best).
  const std::optional<double> val_loss =
      last_val_loss_ && last_val_loss_->first == progress_.step ? std::optional(last_val_loss_->second) : std::nullopt;
  const SaveReport r = iris::save_checkpoint(checkpoint_state(), progress_, config_.checkpoint.dir,
                                             {config_.checkpoint.keep, config_.checkpoint.keep_best}, val_loss);
  last_save_s_ = r.seconds;
  if (topo_.rank == 0)
    spdlog::info("checkpoint {}: {:.3f} GB in {:.2f} s ({:.2f} GB/s)", r.dir.string(), r.bytes / 1e9, r.seconds,
                 r.bytes / 1e9 / std::max(r.seconds, 1e-9));
}

void Trainer::describe_startup() const {
  // Collective: before rank 0 goes its own way. Memory after start-up, the most any rank holds.
  double memory_mib[2] = {peak_rss_mib(), device_peak_mib_.value_or(0.0)};
  comms_.world->all_reduce(memory_mib, 2, ReduceOp::Max);
  if (topo_.rank != 0) return;
  spdlog::info("resolved configuration:\n{}", config_.to_ini());
  spdlog::info("model {}: {} parameters ({} layers, hidden {}, heads {}/{} kv, vocab {})", model_config_.source,
               model_config_.num_parameters(), model_config_.num_hidden_layers, model_config_.hidden_size,
               model_config_.num_attention_heads, model_config_.num_key_value_heads, model_config_.vocab_size);
  spdlog::info("layout {}: rank 0 holds layers [{}, {}) and {} parameters", topo_.describe(), layers_.first, layers_.last,
               table_.total_numel());
  spdlog::info("{}", backend_->describe());
  spdlog::info("memory after start-up (max over ranks): host {:.0f} MiB (peak RSS){}", memory_mib[0],
               device_peak_mib_ ? fmt::format(", device {:.0f} MiB in use", memory_mib[1]) : "");
  if (topo_.dp > 1) {
    if (layout_.overlap)
      spdlog::info("gradient reduction: overlapped with the last micro-batch's backward, {} buckets of up to {} "
                   "elements per step, each reduced to the DP rank that owns it (rank 0)",
                   layout_.grad_reduce_calls(), layout_.bucket);
    else
      spdlog::info("gradient reduction: bucketed reduce-scatter after the backward, {} calls of {} elements per "
                   "shard per step (rank 0){}", layout_.grad_reduce_calls(), layout_.bucket,
                   config_.grad_dtype() == DType::BF16 && config_.overlap_grad_reduce_requested()
                       ? "; parallel.overlap_grad_reduce does not apply to train.grad_dtype=bf16 (the overlapped "
                         "reduction sums fp32 buffers in place), so the bf16 gradients are widened to fp32 bucket "
                         "by bucket and reduce-scattered into an fp32 shard"
                       : "");
  }
  spdlog::info("pipeline: {} micro-batches per step, {} activation sets on stage 0", config_.train.grad_accum,
               backend_->activation_sets());
  spdlog::info("{} data {}", to_string(config_.train.task), data_.train->describe());
  spdlog::info("run plan: {}", plan_.describe());
  if (data_.valid) spdlog::info("validation data {}", data_.valid->describe());
  spdlog::info("global batch {} rows = {} tokens per step", global_batch_, global_batch_ * config_.train.seq_len);
}

double Trainer::global_grad_norm(double local_sumsq) const {
  double sumsq = local_sumsq;
  comms_.world->all_reduce(&sumsq, 1, ReduceOp::Sum);
  return std::sqrt(sumsq);
}

// The loss is the mean over the trained tokens of the whole global batch (every micro-batch of every
// DP rank), not a mean of per-micro-batch means, so any split of the batch gives the same gradient.
// Pretraining trains every token: the weight is 1 / (tokens in the global batch).
double Trainer::set_loss_weights(const std::vector<Batch>& batches, std::vector<std::vector<float>>& weights) {
  const double trained = trained_tokens(batches);
  weigh_tokens(batches, 1.0f / static_cast<float>(std::max(trained, 1.0)), weights);  // no trained token: loss 0
  return trained;
}

double Trainer::trained_tokens(const std::vector<Batch>& batches) const {
  double trained = 0;
  for (const Batch& b : batches)
    for (float x : b.loss_mask) trained += x;
  comms_.dp->all_reduce(&trained, 1, ReduceOp::Sum);
  return trained;
}

void Trainer::weigh_tokens(const std::vector<Batch>& batches, float scale, std::vector<std::vector<float>>& weights) {
  weights.resize(batches.size());
  for (size_t m = 0; m < batches.size(); ++m) {
    weights[m].resize(batches[m].loss_mask.size());
    for (size_t i = 0; i < weights[m].size(); ++i) weights[m][i] = batches[m].loss_mask[i] * scale;
  }
}

MicroBatch Trainer::micro_batch(const Batch& b, const std::vector<float>& weights) const {
  return MicroBatch{b.tokens.data(), b.targets.data(), weights.data(), b.positions.empty() ? nullptr : b.positions.data(),
                    b.doc.empty() ? nullptr : b.doc.data()};
}

// Validation global batch k: rows [k·global_batch, (k+1)·global_batch) of the validation order, split over
// DP ranks and micro-batches as a training batch is, so every layout sees the same rows. Rows at or past
// `rows` (the end of the validation set with eval.batches = all) are padding: in the batch, out of the loss.
void Trainer::fill_validation_batch(uint64_t k, uint64_t rows, Batch* micro_batches) const {
  const int B = config_.train.micro_batch, accum = config_.train.grad_accum;
  for (int m = 0; m < accum; ++m) {
    const uint64_t first = micro_batch_first_sample(k * global_batch_, B, accum, topo_.dp_rank, m);
    Batch& b = micro_batches[m];
    data_.valid->fill(first, B, b);
    for (int r = 0; r < B; ++r)
      if (first + r >= rows)
        std::fill_n(b.loss_mask.begin() + static_cast<size_t>(r) * b.T, b.T, 0.0f);
  }
}

// The validation loss: the mean over every trained token of the validation rows (eval.batches global
// batches, or all of one pass over the validation set), on every rank.
std::optional<double> Trainer::validation_loss() {
  IRIS_CHECK(data_.valid != nullptr, "validation_loss without validation data");
  const int accum = config_.train.grad_accum;
  const bool all = config_.eval.batches == 0;
  const uint64_t rows = all ? data_.valid->num_samples() : static_cast<uint64_t>(config_.eval.batches) * global_batch_;
  const uint64_t batches = (rows + global_batch_ - 1) / global_batch_;
  // A fixed number of batches is filled once and kept, weighted by 1 / their trained tokens. The whole set is
  // refilled batch by batch (it may not fit in memory) with weight 1 per trained token, and the sum is divided
  // by the set's trained tokens, counted on the way, at the end.
  std::vector<Batch> scratch(all ? accum : 0);
  if (eval_batches_.empty() && !all) {
    eval_batches_.resize(batches * accum);
    for (uint64_t k = 0; k < batches; ++k) fill_validation_batch(k, rows, &eval_batches_[k * accum]);
    set_loss_weights(eval_batches_, eval_weights_);
  }
  double stage_loss = 0, tokens = 0;
  for (uint64_t k = 0; k < (all ? batches : 1); ++k) {
    if (all) {
      fill_validation_batch(k, rows, scratch.data());
      tokens += trained_tokens(scratch);
      weigh_tokens(scratch, 1.0f, eval_weights_);
    }
    const std::vector<Batch>& held = all ? scratch : eval_batches_;
    const int count = static_cast<int>(held.size());
    const auto eval_batch = [&](int m) {
      maybe_raise_test_signal(topo_.rank, static_cast<int>(progress_.step), static_cast<int>(k) * accum + m, true);
      return micro_batch(held[m], eval_weights_[m]);
    };
    const StopAgreement stop = mid_step_agreement();
    const PipelineRun r = backend_->forward_only(count, eval_batch, stop);
    if (r.stopped) {
      abandoned_ = fmt::format("the evaluation after step {} after {} of {} micro-batches", progress_.step,
                               static_cast<int>(k) * accum + r.micro_batches_done, static_cast<int>(batches) * accum);
      return std::nullopt;
    }
    stage_loss += r.loss;
  }
  if (all) stage_loss /= std::max(tokens, 1.0);  // no trained token: loss 0
  double loss = topo_.is_last_stage() && topo_.tp_rank == 0 ? stage_loss : 0.0;
  comms_.world->all_reduce(&loss, 1, ReduceOp::Sum);
  return loss;
}

std::optional<StepMetrics> Trainer::step(int step) {
  const auto start = std::chrono::steady_clock::now();
  maybe_inject_fault(topo_.rank, step);
  const int B = config_.train.micro_batch, T = config_.train.seq_len;

  for (int m = 0; m < config_.train.grad_accum; ++m)
    data_.train->fill(micro_batch_first_sample(progress_.consumed_samples, B, config_.train.grad_accum, topo_.dp_rank, m),
                      B, batches_[m]);
  set_loss_weights(batches_, loss_weights_);
  const auto batch = [&](int m) {
    maybe_raise_test_signal(topo_.rank, step, m, false);
    return micro_batch(batches_[m], loss_weights_[m]);
  };
  const StopAgreement stop = mid_step_agreement();
  const PipelineRun r = backend_->forward_backward(batch, stop);
  if (r.stopped) {  // nothing has changed yet: the step reruns from its start after a restart
    abandoned_ = fmt::format("step {} after {} of {} micro-batches", step, r.micro_batches_done, config_.train.grad_accum);
    return std::nullopt;
  }
  const double stage_loss = r.loss;
  if (!reduce_overlap_logged_ && layout_.overlap) {  // once: did the overlap happen?
    reduce_overlap_logged_ = true;
    if (topo_.rank == 0)
      spdlog::info("gradient reduction: {} of {} buckets issued during the backward of step {}",
                   backend_->grad_buckets_issued(), layout_.grad_reduce_calls(), step);
  }
  const double grad_norm = global_grad_norm(backend_->reduce_grads_sum_squares());
  // The loss lives on the last stage (identical on its TP ranks); sum the DP ranks' parts.
  double loss = topo_.is_last_stage() && topo_.tp_rank == 0 ? stage_loss : 0.0;
  comms_.world->all_reduce(&loss, 1, ReduceOp::Sum);

  StepMetrics m;
  m.step = step;
  m.loss = loss;
  m.grad_norm = grad_norm;
  m.lr = schedule_.at(step);
  m.skipped = !std::isfinite(loss) || !std::isfinite(grad_norm);  // every rank sees the same values
  if (m.skipped) {
    ++progress_.skipped_steps;
  } else {
    const double clip = config_.optim.grad_clip;
    const float scale = clip > 0 && grad_norm > clip ? static_cast<float>(clip / grad_norm) : 1.0f;
    backend_->update(m.lr, step - progress_.skipped_steps, scale);
  }
  m.skipped_steps = progress_.skipped_steps;
  progress_.step = step;
  progress_.tokens += global_batch_ * T;
  progress_.consumed_samples += global_batch_;
  m.tokens = progress_.tokens;
  m.step_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  elapsed_s_ += m.step_time_s;
  m.elapsed_s = elapsed_s_;
  m.tokens_per_s = global_batch_ * T / m.step_time_s;
  // MFU as in docs/design.md, "Performance": model FLOPs per token (6 × matmul parameters + 12 · L · C · T,
  // plan::flops_per_token) times tokens/s, over the peak of every rank together (train.peak_tflops, else the
  // GPU's from the table).
  if (peak_tflops_)
    m.mfu = m.tokens_per_s * plan::flops_per_token(model_config_, T) / (topo_.world * *peak_tflops_ * 1e12);
  // Rank 0 writes the metrics; the peak over all ranks is what must fit (later stages may hold more).
  m.rank0_peak_memory_mib = peak_rss_mib();
  m.peak_memory_mib = m.rank0_peak_memory_mib;
  comms_.world->all_reduce(&m.peak_memory_mib, 1, ReduceOp::Max);
  if (const std::optional<double> in_use = backend_->device_memory_in_use_mib()) {
    device_peak_mib_ = std::max(device_peak_mib_.value_or(0.0), *in_use);
    m.device_peak_memory_mib = device_peak_mib_;
    comms_.world->all_reduce(&*m.device_peak_memory_mib, 1, ReduceOp::Max);
  }
  return m;
}

void Trainer::save_weights() {
  // One file per model-parallel rank (DP replicas are identical: dp_rank 0 writes; the other DP ranks
  // take part in gathering the weights from the shards they own). Each tensor is this rank's block;
  // __metadata__ says where it sits in the global tensor.
  std::unique_ptr<io::SafetensorsWriter> writer;
  if (topo_.dp_rank == 0) {
    const fs::path dir = fs::path(config_.output.dir) / "weights";
    fs::create_directories(dir);
    nlohmann::json layout = nlohmann::json::object();
    const char* rules[] = {"replicated", "column", "row", "vocab"};
    for (const auto& e : table_.entries())
      layout[e.name] = {{"global_shape", e.global_shape}, {"rule", rules[static_cast<int>(e.rule)]},
                        {"shard_begin", e.shard_begin}, {"valid_rows", e.valid_rows}};
    writer = std::make_unique<io::SafetensorsWriter>(
        dir / fmt::format("tp{:02}_pp{:02}.safetensors", topo_.tp_rank, topo_.pp_rank),
        std::map<std::string, std::string>{{"iris_layout", layout.dump()}, {"format", "iris-shard"}});
    for (const auto& e : table_.entries()) writer->declare(e.name, DType::F32, e.local_shape);
  }
  std::vector<float> block;  // one tensor at a time
  for (const auto& e : table_.entries()) {
    block.resize(e.numel);
    state_->gather_weights(e.offset, e.numel, block.data());
    if (writer) writer->write_f32(e.name, block.data(), e.numel);
  }
  if (writer) writer->finish();
}

// Stop early when the next step and a save might not fit before the deadline any more; between
// micro-batches, when the save might not (the first step after a start has no step time yet).
bool Trainer::time_is_up(bool mid_step) const {
  if (deadline_ <= 0) return false;
  const double margin = std::max(config_.train.exit_margin_s, (mid_step ? 0 : 2 * slowest_step_s_) + 2 * last_save_s_);
  return wall_clock_s() + margin >= deadline_;
}

// What any rank saw (a stop signal, the deadline), all ranks act on together: the maximum over the
// world. The signal number rides along for the message.
bool Trainer::agree_to_stop(bool mid_step) {
  float seen[2] = {static_cast<float>(stop_signal_received()), time_is_up(mid_step) ? 1.0f : 0.0f};
  comms_.world->all_reduce(seen, 2, ReduceOp::Max);
  return take_agreement(seen);
}

bool Trainer::take_agreement(const float seen[2]) {
  if (seen[0] != 0) {
    const int signal = static_cast<int>(seen[0]);  // a signal number: exact in a float
    stop_reason_ = signal == SIGUSR1 ? "SIGUSR1" : signal == SIGTERM ? "SIGTERM" : fmt::format("signal {}", signal);
  } else if (seen[1] != 0) {
    stop_reason_ = "the time limit";
  }
  return !stop_reason_.empty();
}

void Trainer::start_agreement() {
  auto a = std::make_unique<PendingAgreement>();
  a->seen[0] = static_cast<float>(stop_signal_received());
  a->seen[1] = time_is_up(true) ? 1.0f : 0.0f;
  a->done = comms_.world->iall_reduce(a->seen, 2, ReduceOp::Max);
  agreements_.push_back(std::move(a));
}

bool Trainer::finish_oldest_agreement() {
  IRIS_CHECK(!agreements_.empty(), "no stop agreement in flight");
  std::unique_ptr<PendingAgreement> a = std::move(agreements_.front());
  agreements_.pop_front();
  a->done->wait();
  return take_agreement(a->seen);
}

StopAgreement Trainer::mid_step_agreement() {
  return StopAgreement{[this] { start_agreement(); }, [this] { return finish_oldest_agreement(); }};
}

std::vector<StepMetrics> Trainer::run() {
  std::vector<StepMetrics> all;
  const bool checkpoints = !config_.checkpoint.dir.empty();
  int64_t saved_step = progress_.step;  // a resumed run does not re-save the step it loaded
  const int first_step = static_cast<int>(progress_.step);
  for (int s = static_cast<int>(progress_.step) + 1; s <= config_.train.steps; ++s) {
    const auto start = std::chrono::steady_clock::now();
    std::optional<StepMetrics> m = step(s);
    if (!m) break;  // stopped between micro-batches: step s is dropped
    if (config_.eval.every > 0 && s % config_.eval.every == 0) {
      m->val_loss = validation_loss();
      if (m->val_loss) last_val_loss_ = {s, *m->val_loss};
    }
    slowest_step_s_ = std::max(slowest_step_s_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (metrics_) metrics_->write(*m);
    if (topo_.rank == 0 && (s % config_.train.log_every == 0 || s == 1 || s == config_.train.steps || m->val_loss))
      spdlog::info("{}", progress_line(*m, config_.train.steps, first_step));
    all.push_back(*m);
    if (divergence_.record(s, m->skipped)) {  // the same step on every rank: they all stop here
      if (topo_.rank == 0) spdlog::error("{}", divergence_.stop_message(s, config_.checkpoint.dir, config_.optim.lr));
      return all;
    }
    // The step-boundary agreement (unless the evaluation already stopped); the time limit does not
    // stop a run that has just finished.
    if (stop_reason_.empty() && agree_to_stop(false) && stop_reason_ == "the time limit" && s == config_.train.steps)
      stop_reason_.clear();
    const bool periodic = config_.checkpoint.every > 0 && s % config_.checkpoint.every == 0;
    if (checkpoints && (periodic || !stop_reason_.empty())) {
      save_checkpoint();
      saved_step = s;
    }
    if (!stop_reason_.empty()) break;
  }
  // A stop between micro-batches saves the state after the last completed step, unless it is saved.
  if (!stop_reason_.empty() && checkpoints && saved_step != progress_.step) {
    save_checkpoint();
    saved_step = progress_.step;
  }
  if (!stop_reason_.empty()) {
    stopped_with_checkpoint_ = checkpoints;
    if (topo_.rank == 0) {
      const std::string dropped = abandoned_.empty() ? "" : fmt::format(" (dropped {}; it reruns after a restart)", abandoned_);
      if (checkpoints && progress_.step == 0)
        spdlog::warn("stopped at step 0 of {} on {}{}: nothing to save, a restart begins afresh; exiting with status {} "
                     "(requeue to continue)", config_.train.steps, stop_reason_, dropped, kExitCheckpointedRequeue);
      else if (checkpoints)
        spdlog::warn("stopped at step {} of {} on {}{}: checkpoint saved; exiting with status {} (requeue to continue)",
                     progress_.step, config_.train.steps, stop_reason_, dropped, kExitCheckpointedRequeue);
      else
        spdlog::error("stopped at step {} of {} on {}, but checkpoint.dir is empty: nothing was saved",
                      progress_.step, config_.train.steps, stop_reason_);
    }
    return all;  // the weights are not final: output.save_weights waits for the end
  }
  if (checkpoints && saved_step != progress_.step) save_checkpoint();
  if (config_.output.save_weights) save_weights();
  return all;
}

int Trainer::exit_status() const {
  if (divergence_.diverged()) return kExitDiverged;
  if (stop_reason_.empty()) return kExitOk;
  return stopped_with_checkpoint_ ? kExitCheckpointedRequeue : kExitFailure;
}

}  // namespace iris
