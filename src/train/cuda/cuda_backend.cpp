// The CUDA training backend: the CUDA stage, its executor (the same PipelineExecutorT loop as the CPU
// stage), Zero1CudaOptimizer and the device communicators, all on one compute stream. The whole state lives on
// the device: weights are initialised there with the CPU's counter-based RNG, the moments start at zero,
// and checkpoints stream each piece through one pinned staging buffer (and a device scratch of its size).
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "parallel/device_comm.h"
#include "src/core/check.h"
#include "src/kernels/cuda/init.cuh"
#include "src/core/rng.h"
#include "src/train/metrics.h"
#include "src/train/cuda/cuda_stage_traits.h"
#include "src/train/cuda/device_init.h"
#include "src/train/cuda/zero1_cuda_optimizer.h"
#include "src/train/training_backend.h"

namespace iris {
namespace {

// The pinned staging buffer and a device fp32 scratch of the same size, over Zero1CudaOptimizer's state.
class CudaStateStore final : public StateStore {
 public:
  CudaStateStore(Zero1CudaOptimizer& optimizer, const Zero1Layout& layout, size_t elements, cudaStream_t stream)
      : optimizer_(optimizer), layout_(layout), elements_(elements), scratch_(elements), stream_(stream) {
    IRIS_CUDA_CHECK(cudaMallocHost(&pinned_, elements * sizeof(float)));
  }
  ~CudaStateStore() override { cudaFreeHost(pinned_); }
  float* staging() override { return pinned_; }
  size_t staging_elements() const override { return elements_; }
  std::pair<size_t, size_t> weight_range() const override { return {layout_.shard_begin, layout_.shard_end}; }
  std::pair<size_t, size_t> moment_range() const override { return {layout_.adam_begin, layout_.adam_end}; }
  void read(StatePart part, size_t begin, size_t count) override {
    IRIS_CHECK(count <= elements_, "read of {} elements through a staging buffer of {}", count, elements_);
    optimizer_.read_state(part, begin, count, pinned_);
  }
  void write(StatePart part, size_t begin, size_t count) override {
    IRIS_CHECK(count <= elements_, "write of {} elements through a staging buffer of {}", count, elements_);
    IRIS_CUDA_CHECK(cudaMemcpyAsync(scratch_.data(), pinned_, count * sizeof(float), cudaMemcpyHostToDevice, stream_));
    optimizer_.write_state(part, begin, count, scratch_.data());
  }
  float* scratch() { return scratch_.data(); }
  size_t bytes() const { return 2 * elements_ * sizeof(float); }

 private:
  Zero1CudaOptimizer& optimizer_;
  const Zero1Layout& layout_;
  size_t elements_;
  DeviceBuffer<float> scratch_;  // (elements,)
  float* pinned_ = nullptr;      // (elements,) page-locked host memory
  cudaStream_t stream_;
};

class CudaBackend final : public TrainingBackend {
 public:
  explicit CudaBackend(const TrainingBackendSetup& s)
      : table_(s.table), layout_(s.layout), norm_ranges_(s.norm_ranges), grad_dtype_(s.grad_dtype), dp_(s.topo.dp) {
    comms_ = make_device_communicators(s.topo, s.model.tie_word_embeddings, s.timeout_s, s.comm);
    comm_ = to_string(s.comm);
    // A blocking stream: it orders itself with the legacy default stream the stage's and buffers' set-up copies use.
    IRIS_CUDA_CHECK(cudaStreamCreate(&stream_));
    set_compute_stream(comms_, stream_);
    stage_ = std::make_unique<CudaLlamaStage>(s.model, s.topo, s.table, s.layers, s.micro_batch, s.seq_len,
                                              comms_.tp.get(), stream_, s.recompute, s.grad_dtype);
    if (comms_.embedding) embedding_ = &s.table.at("model.embed_tokens.weight");
    optimizer_ = std::make_unique<Zero1CudaOptimizer>(layout_, s.adam, comms_.dp.get(), stream_, s.grad_dtype,
                                               embedding_ ? embedding_->numel : 0);
    executor_ = std::make_unique<CudaPipelineExecutor>(*stage_, s.topo, comms_.pp.get(), s.grad_accum);
    store_ = std::make_unique<CudaStateStore>(*optimizer_, layout_, s.staging_elements, stream_);
    int device = 0;
    IRIS_CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    IRIS_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    device_name_ = prop.name;
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  }
  ~CudaBackend() override {
    // Device objects go before the stream they queue on.
    store_.reset();
    executor_.reset();
    optimizer_.reset();
    stage_.reset();
    comms_ = Communicators{};
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  void initialize(uint64_t seed) override {
    // Each tensor in pieces of the scratch's size, generated where it is used (no host copy).
    const size_t S = store_->staging_elements();
    for (const auto& e : table_.entries()) {
      const cuda::InitIndexMap map = init_index_map(e);
      const uint64_t stream_id = name_hash(e.name);
      for (size_t first = 0; first < e.numel; first += S) {
        const size_t n = std::min(S, e.numel - first);
        cuda::init_weights(store_->scratch(), static_cast<int64_t>(first), static_cast<int64_t>(n), map, e.init_std,
                           seed, stream_id, stream_);
        optimizer_->write_state(StatePart::Weights, e.offset + first, n, store_->scratch());
      }
    }
    optimizer_->zero_moments();
  }

  PipelineRun forward_backward(const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) override {
    optimizer_->zero_grads();
    optimizer_->begin_grad_reduce();
    return executor_->run(optimizer_->weights(), optimizer_->grads(), batch, stop, optimizer_->grads_ready());
  }
  PipelineRun forward_only(int count, const std::function<MicroBatch(int)>& batch, const StopAgreement& stop) override {
    const PipelineRun r = executor_->forward_only(optimizer_->weights(), count, batch, stop);
    IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return r;
  }
  double reduce_grads_sum_squares() override {
    // The tied embedding's two copies (first and last stage) receive the sum of both gradients.
    if (embedding_) optimizer_->all_reduce_grads(*comms_.embedding, embedding_->offset, embedding_->numel);
    optimizer_->finish_grad_reduce();
    return optimizer_->sum_squares(norm_ranges_);
  }
  void update(double lr, int step, float grad_scale) override {
    optimizer_->step(lr, step, grad_scale);
    IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));  // step time covers the update; errors surface here
  }
  StateStore& state() override { return *store_; }

  size_t grad_buckets_issued() const override { return optimizer_->grad_buckets_issued(); }
  int activation_sets() const override { return executor_->activation_sets(); }
  std::string device_name() const override { return device_name_; }
  std::optional<double> peak_tflops() const override { return dense_bf16_peak_tflops(device_name_); }
  std::string describe() const override {
    const double MiB = 1024.0 * 1024.0;
    const bool bf16 = grad_dtype_ == DType::BF16;
    std::string text = fmt::format(
        "device {} (train.device=cuda, parallel.comm={}): rank 0 holds {:.2f} MiB of bf16 weights, {} gradients and "
        "optimizer shard (fp32 master + Adam m, v) on the GPU and no host copy of them; checkpoints stream through "
        "{:.2f} MiB of pinned staging (and as much device scratch)",
        device_name_, comm_, optimizer_->allocated_bytes() / MiB,
        bf16 ? (dp_ > 1 ? "bf16 (train.grad_dtype=bf16; the DP-summed shard in fp32)" : "bf16 (train.grad_dtype=bf16)")
             : "fp32",
        store_->bytes() / 2 / MiB);
    if (!peak_tflops()) text += fmt::format("; MFU unknown for device {} (set train.peak_tflops)", device_name_);
    return text;
  }
  std::optional<double> device_memory_in_use_mib() const override {
    size_t free = 0, total = 0;
    IRIS_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return static_cast<double>(total - free) / (1024.0 * 1024.0);
  }

 private:
  const ParamTable& table_;
  Zero1Layout layout_;
  std::vector<std::pair<size_t, size_t>> norm_ranges_;
  DType grad_dtype_;
  int dp_;
  std::string comm_;
  Communicators comms_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<CudaLlamaStage> stage_;
  std::unique_ptr<Zero1CudaOptimizer> optimizer_;
  std::unique_ptr<CudaPipelineExecutor> executor_;
  std::unique_ptr<CudaStateStore> store_;
  const ParamEntry* embedding_ = nullptr;
  std::string device_name_;
};

}  // namespace

std::unique_ptr<TrainingBackend> make_cuda_backend(const TrainingBackendSetup& setup) {
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);
  IRIS_USER_CHECK(rc == cudaSuccess && devices > 0,
                  "train.device=cuda: no CUDA device is visible to rank {} ({}); check CUDA_VISIBLE_DEVICES and the "
                  "driver (nvidia-smi), or use train.device=cpu",
                  setup.topo.rank, rc == cudaSuccess ? "cudaGetDeviceCount found 0 devices" : cudaGetErrorString(rc));
  return std::make_unique<CudaBackend>(setup);
}

}  // namespace iris
