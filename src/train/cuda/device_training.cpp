// make_device_training for CUDA builds: the CUDA stage, its executor (the same PipelineExecutorT loop as
// the CPU stage), DeviceZero1 and the device communicators, all on one compute stream.
#include <cuda_runtime.h>

#include "parallel/device_comm.h"
#include "src/core/check.h"
#include "src/train/cuda/cuda_stage_traits.h"
#include "src/train/cuda/device_optimizer.h"
#include "src/train/device_training.h"

namespace iris {
namespace {

class CudaTraining final : public DeviceTraining {
 public:
  explicit CudaTraining(const DeviceTrainingSetup& s) : norm_ranges_(s.norm_ranges) {
    comms_ = make_device_communicators(s.topo, s.model.tie_word_embeddings, s.timeout_s, parse_comm_kind(s.comm));
    // A blocking stream: it orders itself with the legacy default stream the stage's and buffers' set-up copies use.
    IRIS_CUDA_CHECK(cudaStreamCreate(&stream_));
    set_compute_stream(comms_, stream_);
    stage_ = std::make_unique<CudaLlamaStage>(s.model, s.topo, s.table, s.layers, s.micro_batch, s.seq_len,
                                              comms_.tp.get(), stream_, s.recompute, s.grad_dtype);
    if (comms_.embedding) embedding_ = &s.table.at("model.embed_tokens.weight");
    optimizer_ = std::make_unique<DeviceZero1>(s.host_optimizer, comms_.dp.get(), stream_, s.grad_dtype,
                                               embedding_ ? embedding_->numel : 0);
    executor_ = std::make_unique<CudaPipelineExecutor>(*stage_, s.topo, comms_.pp.get(), s.grad_accum);
    int device = 0;
    IRIS_CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    IRIS_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    device_name_ = prop.name;
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  }
  ~CudaTraining() override {
    // Device objects go before the stream they queue on.
    executor_.reset();
    optimizer_.reset();
    stage_.reset();
    comms_ = Communicators{};
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  void upload(const float* params, const AdamW& adam) override { optimizer_->upload(params, adam); }
  void download(float* params, AdamW& adam) override { optimizer_->download(params, adam); }

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

  size_t grad_buckets_issued() const override { return optimizer_->grad_buckets_issued(); }
  int activation_sets() const override { return executor_->activation_sets(); }
  std::string device_name() const override { return device_name_; }
  double used_memory_mib() const override {
    size_t free = 0, total = 0;
    IRIS_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return static_cast<double>(total - free) / (1024.0 * 1024.0);
  }
  size_t allocated_bytes() const override { return optimizer_->allocated_bytes(); }

 private:
  std::vector<std::pair<size_t, size_t>> norm_ranges_;
  Communicators comms_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<CudaLlamaStage> stage_;
  std::unique_ptr<DeviceZero1> optimizer_;
  std::unique_ptr<CudaPipelineExecutor> executor_;
  const ParamEntry* embedding_ = nullptr;
  std::string device_name_;
};

}  // namespace

void check_device_training_available(int rank) {
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);
  IRIS_USER_CHECK(rc == cudaSuccess && devices > 0,
                  "train.device=cuda: no CUDA device is visible to rank {} ({}); check CUDA_VISIBLE_DEVICES and the "
                  "driver (nvidia-smi), or use train.device=cpu",
                  rank, rc == cudaSuccess ? "cudaGetDeviceCount found 0 devices" : cudaGetErrorString(rc));
}

std::unique_ptr<DeviceTraining> make_device_training(const DeviceTrainingSetup& setup) {
  check_device_training_available(setup.topo.rank);
  return std::make_unique<CudaTraining>(setup);
}

}  // namespace iris
