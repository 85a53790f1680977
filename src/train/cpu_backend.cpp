// The CPU training backend: host fp32 weights and gradients, LlamaStage under the PipelineExecutor, ZeRO-1 by
// Zero1CpuOptimizer over the MPI groups. The weight buffer is whole on every rank (all-gathered after each
// update); checkpoints still read it through the same state stream as the GPU backend, staging size included.
#include <fmt/format.h>

#include "src/core/check.h"
#include "src/train/zero1_cpu_optimizer.h"
#include "src/train/training_backend.h"

namespace iris {
namespace {

class CpuBackend final : public TrainingBackend {
 public:
  explicit CpuBackend(const TrainingBackendSetup& s)
      : table_(s.table), comms_(s.host_comms), layout_(s.layout) {
    optimizer_ = std::make_unique<Zero1CpuOptimizer>(s.table, s.adam, comms_.dp.get(), s.layout.bucket, s.layout.overlap);
    IRIS_CHECK(optimizer_->padded_size() == layout_.padded && optimizer_->shard_begin() == layout_.shard_begin,
               "the CPU optimizer's shards differ from the trainer's ZeRO-1 layout");
    params_.assign(layout_.padded, 0.0f);
    grads_.assign(layout_.padded, 0.0f);
    norm_weight_.assign(layout_.shard(), 0.0f);
    for (const auto& [b, f] : s.norm_ranges)
      for (size_t i = b; i < f; ++i) norm_weight_[i - layout_.shard_begin] = 1.0f;
    stage_ = std::make_unique<LlamaStage>(s.model, s.topo, s.table, s.layers, s.micro_batch, s.seq_len, comms_.tp.get(),
                                          s.recompute);
    executor_ = std::make_unique<PipelineExecutor>(*stage_, s.topo, comms_.pp.get(), s.grad_accum);
    store_ = std::make_unique<HostStateStore>(params_.data(), params_.size(),
                                              std::pair{layout_.shard_begin, layout_.shard_end}, &optimizer_->adam(),
                                              s.staging_elements);
    if (comms_.embedding) embedding_ = &s.table.at("model.embed_tokens.weight");
  }

  void initialize(uint64_t seed) override { table_.initialize(params_.data(), seed); }  // moments start at zero

  PipelineRun forward_backward(const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) override {
    std::fill(grads_.begin(), grads_.end(), 0.0f);
    optimizer_->begin_grad_reduce(grads_.data());
    return executor_->run(params_.data(), grads_.data(), batch, stop, optimizer_->grads_ready());
  }
  PipelineRun forward_only(int count, const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) override {
    return executor_->forward_only(params_.data(), count, batch, stop);
  }
  double reduce_grads_sum_squares() override {
    // The tied embedding's two copies (first and last stage) receive the sum of both gradients.
    if (embedding_) comms_.embedding->all_reduce(grads_.data() + embedding_->offset, embedding_->numel, ReduceOp::Sum);
    optimizer_->finish_grad_reduce(grads_.data());
    const float* g = grads_.data() + layout_.shard_begin;
    double sumsq = 0.0;
    for (size_t i = 0; i < norm_weight_.size(); ++i) sumsq += static_cast<double>(norm_weight_[i]) * g[i] * g[i];
    return sumsq;
  }
  void update(double lr, int step, float grad_scale) override {
    optimizer_->step(params_.data(), grads_.data(), lr, step, grad_scale);
  }
  StateStore& state() override { return *store_; }

  size_t grad_buckets_issued() const override { return optimizer_->grad_buckets_issued(); }
  int activation_sets() const override { return executor_->activation_sets(); }
  std::string device_name() const override { return "cpu"; }
  std::optional<double> peak_tflops() const override { return std::nullopt; }
  std::string describe() const override {
    const double MiB = 1024.0 * 1024.0;
    return fmt::format("rank 0 memory: weights {:.2f} MiB, gradients {:.2f} MiB, optimizer state (ZeRO-1 shard: fp32 "
                       "master + Adam m, v) {:.2f} MiB = {} bytes; checkpoint staging {:.1f} KiB",
                       table_.total_numel() * 4 / MiB, layout_.padded * 4 / MiB, optimizer_->state_bytes() / MiB,
                       optimizer_->state_bytes(), store_->staging_elements() * 4 / 1024.0);
  }
  std::optional<double> device_memory_in_use_mib() const override { return std::nullopt; }

 private:
  const ParamTable& table_;
  Communicators& comms_;
  Zero1Layout layout_;
  std::vector<float> params_, grads_;  // (padded,) flat
  std::vector<float> norm_weight_;     // (shard,) 1 where the element counts in the global grad norm
  std::unique_ptr<Zero1CpuOptimizer> optimizer_;
  std::unique_ptr<LlamaStage> stage_;
  std::unique_ptr<PipelineExecutor> executor_;
  std::unique_ptr<HostStateStore> store_;
  const ParamEntry* embedding_ = nullptr;
};

}  // namespace

std::unique_ptr<TrainingBackend> make_cpu_backend(const TrainingBackendSetup& setup) {
  return std::make_unique<CpuBackend>(setup);
}

std::unique_ptr<TrainingBackend> make_training_backend(Device device, const TrainingBackendSetup& setup) {
  return device == Device::Cuda ? make_cuda_backend(setup) : make_cpu_backend(setup);
}

}  // namespace iris
