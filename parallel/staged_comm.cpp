#include "parallel/staged_comm.h"

#include <algorithm>

#include "parallel/cuda_util.h"
#include "src/core/check.h"

namespace iris {

class StagedComm::PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t bytes) : capacity_(std::max<size_t>(bytes, 1)) {
    IRIS_CUDA_CHECK(cudaMallocHost(&data_, capacity_));
  }
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  char* bytes() const { return static_cast<char*>(data_); }
  float* floats() const { return static_cast<float*>(data_); }
  size_t capacity() const { return capacity_; }

 private:
  void* data_ = nullptr;
  size_t capacity_;
};

class StagedComm::Handle : public CommHandle {
 public:
  Handle(StagedComm* comm, std::unique_ptr<PinnedBuffer> host, std::unique_ptr<CommHandle> inner, void* copy_back_to,
         size_t bytes, size_t offset)
      : comm_(comm), host_(std::move(host)), inner_(std::move(inner)), copy_back_to_(copy_back_to), bytes_(bytes),
        offset_(offset) {}
  void wait() override {
    if (!inner_) return;
    inner_->wait();
    inner_.reset();
    if (copy_back_to_ != nullptr) comm_->copy_back(*host_, offset_, copy_back_to_, bytes_);
    comm_->recycle(std::move(host_));
  }

 private:
  StagedComm* comm_;
  std::unique_ptr<PinnedBuffer> host_;
  std::unique_ptr<CommHandle> inner_;
  void* copy_back_to_;
  size_t bytes_, offset_;
};

StagedComm::StagedComm(std::unique_ptr<Comm> host_group) : host_(std::move(host_group)) {}
StagedComm::~StagedComm() = default;

std::unique_ptr<StagedComm::PinnedBuffer> StagedComm::acquire(size_t bytes) {
  // The smallest recycled buffer that fits; a few are kept (one per operation in flight, typically).
  auto best = free_.end();
  for (auto it = free_.begin(); it != free_.end(); ++it)
    if ((*it)->capacity() >= bytes && (best == free_.end() || (*it)->capacity() < (*best)->capacity())) best = it;
  if (best == free_.end()) return std::make_unique<PinnedBuffer>(bytes);
  std::unique_ptr<PinnedBuffer> buffer = std::move(*best);
  free_.erase(best);
  return buffer;
}

void StagedComm::recycle(std::unique_ptr<PinnedBuffer> buffer) {
  constexpr size_t kKeep = 8;
  free_.push_back(std::move(buffer));
  if (free_.size() > kKeep) {  // drop the smallest
    auto smallest = std::min_element(free_.begin(), free_.end(),
                                     [](const auto& a, const auto& b) { return a->capacity() < b->capacity(); });
    free_.erase(smallest);
  }
}

std::unique_ptr<StagedComm::PinnedBuffer> StagedComm::stage_in(const void* device, size_t bytes, size_t capacity,
                                                               size_t offset) {
  std::unique_ptr<PinnedBuffer> host = acquire(capacity);
  if (bytes > 0) {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(host->bytes() + offset, device, bytes, cudaMemcpyDeviceToHost, compute_));
  }
  IRIS_CUDA_CHECK(cudaStreamSynchronize(compute_));  // the MPI operation reads the host copy now
  return host;
}

void StagedComm::copy_back(const PinnedBuffer& host, size_t offset, void* device, size_t bytes) {
  if (bytes > 0) {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(device, host.bytes() + offset, bytes, cudaMemcpyHostToDevice, compute_));
  }
  // The staging buffer is recycled next; the copy must have read it.
  IRIS_CUDA_CHECK(cudaStreamSynchronize(compute_));
}

std::unique_ptr<CommHandle> StagedComm::staged(std::unique_ptr<PinnedBuffer> host, std::unique_ptr<CommHandle> inner,
                                               void* copy_back_to, size_t bytes, size_t offset) {
  return std::make_unique<Handle>(this, std::move(host), std::move(inner), copy_back_to, bytes, offset);
}

std::unique_ptr<CommHandle> StagedComm::iall_reduce(float* data, size_t count, ReduceOp op) {
  require_device_buffer(data, "all_reduce", name());
  const size_t bytes = count * sizeof(float);
  auto host = stage_in(data, bytes, bytes);
  auto inner = host_->iall_reduce(host->floats(), count, op);
  return staged(std::move(host), std::move(inner), data, bytes);
}

std::unique_ptr<CommHandle> StagedComm::ireduce_scatter(const float* send, float* recv, size_t count) {
  require_device_buffer(send, "reduce_scatter", name());
  require_device_buffer(recv, "reduce_scatter", name());
  // Host layout: the size()·count inputs, then the count reduced values of this rank.
  const size_t in_bytes = size() * count * sizeof(float), out_bytes = count * sizeof(float);
  auto host = stage_in(send, in_bytes, in_bytes + out_bytes);
  auto inner = host_->ireduce_scatter(host->floats(), host->floats() + size() * count, count);
  return staged(std::move(host), std::move(inner), recv, out_bytes, in_bytes);
}

std::unique_ptr<CommHandle> StagedComm::iall_gather(const float* send, float* recv, size_t count) {
  require_device_buffer(send, "all_gather", name());
  require_device_buffer(recv, "all_gather", name());
  // This rank's block goes straight to its place in the host copy of recv; the MPI gather is in place.
  const size_t block = count * sizeof(float), total = size() * block;
  auto host = stage_in(send, block, total, rank() * block);
  float* host_recv = host->floats();
  auto inner = host_->iall_gather(host_recv + rank() * count, host_recv, count);
  return staged(std::move(host), std::move(inner), recv, total);
}

std::unique_ptr<CommHandle> StagedComm::ibroadcast(float* data, size_t count, int root) {
  require_device_buffer(data, "broadcast", name());
  const size_t bytes = count * sizeof(float);
  auto host = stage_in(data, bytes, bytes);
  auto inner = host_->ibroadcast(host->floats(), count, root);
  return staged(std::move(host), std::move(inner), data, bytes);
}

std::unique_ptr<CommHandle> StagedComm::ireduce(float* data, size_t count, int root) {
  require_device_buffer(data, "reduce", name());
  const size_t bytes = count * sizeof(float);
  auto host = stage_in(data, bytes, bytes);
  auto inner = host_->ireduce(host->floats(), count, root);
  auto done = staged(std::move(host), std::move(inner), rank() == root ? data : nullptr, rank() == root ? bytes : 0);
  done->wait();  // its staging buffer goes back to the pool now
  return done;
}

std::unique_ptr<CommHandle> StagedComm::isend(const float* data, size_t count, int peer, int tag) {
  require_device_buffer(data, "send", name());
  const size_t bytes = count * sizeof(float);
  auto host = stage_in(data, bytes, bytes);
  auto inner = host_->isend(host->floats(), count, peer, tag);
  return staged(std::move(host), std::move(inner), nullptr, 0);
}

std::unique_ptr<CommHandle> StagedComm::irecv(float* data, size_t count, int peer, int tag) {
  require_device_buffer(data, "recv", name());
  const size_t bytes = count * sizeof(float);
  auto host = acquire(bytes);
  auto inner = host_->irecv(host->floats(), count, peer, tag);
  return staged(std::move(host), std::move(inner), data, bytes);
}

void StagedComm::all_reduce(float* data, size_t count, ReduceOp op) { iall_reduce(data, count, op)->wait(); }

void StagedComm::all_reduce(double* data, size_t count, ReduceOp op) {
  require_device_buffer(data, "all_reduce", name());
  const size_t bytes = count * sizeof(double);
  auto host = stage_in(data, bytes, bytes);
  host_->all_reduce(reinterpret_cast<double*>(host->bytes()), count, op);
  copy_back(*host, 0, data, bytes);
  recycle(std::move(host));
}

void StagedComm::reduce_scatter(const float* send, float* recv, size_t count) {
  ireduce_scatter(send, recv, count)->wait();
}

void StagedComm::all_gather(const float* send, float* recv, size_t count) { iall_gather(send, recv, count)->wait(); }

void StagedComm::broadcast(float* data, size_t count, int root) { ibroadcast(data, count, root)->wait(); }

void StagedComm::broadcast_bytes(void* data, size_t bytes, int root) {
  require_device_buffer(data, "broadcast", name());
  auto host = stage_in(data, bytes, bytes);
  host_->broadcast_bytes(host->bytes(), bytes, root);
  copy_back(*host, 0, data, bytes);
  recycle(std::move(host));
}

}  // namespace iris
