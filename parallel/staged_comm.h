// StagedComm: device buffers through an MpiComm (--parallel.comm mpi on GPUs). Each operation waits for
// the compute stream, copies device → pinned host memory, runs the MPI operation (under MpiWatchdog's
// parallel.timeout_s, which reports and aborts), and copies the result back on the compute stream.
// Slower than NCCL, but several ranks can share one GPU and clusters without NCCL still run.
// An i-operation starts its MPI part at once; the copy back happens in wait(). As with MpiComm, every
// handle must be waited before it is destroyed (the staging memory is freed with it).
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "parallel/device_comm.h"

namespace iris {

class StagedComm : public DeviceComm {
 public:
  // `host_group`: an MpiComm (host buffers) of the same ranks.
  explicit StagedComm(std::unique_ptr<Comm> host_group);
  ~StagedComm() override;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  const std::string& name() const override { return host_->name(); }
  void set_compute_stream(CUstream_st* stream) override { compute_ = stream; }
  CUstream_st* compute_stream() const override { return compute_; }

  void all_reduce(float* data, size_t count, ReduceOp op) override;
  void all_reduce(double* data, size_t count, ReduceOp op) override;
  void reduce_scatter(const float* send, float* recv, size_t count) override;
  void all_gather(const float* send, float* recv, size_t count) override;
  void broadcast(float* data, size_t count, int root) override;
  void broadcast_bytes(void* data, size_t bytes, int root) override;
  void barrier() override { host_->barrier(); }

  std::unique_ptr<CommHandle> isend(const float* data, size_t count, int peer, int tag) override;
  std::unique_ptr<CommHandle> irecv(float* data, size_t count, int peer, int tag) override;
  std::unique_ptr<CommHandle> iall_reduce(float* data, size_t count, ReduceOp op) override;
  std::unique_ptr<CommHandle> ireduce_scatter(const float* send, float* recv, size_t count) override;
  std::unique_ptr<CommHandle> iall_gather(const float* send, float* recv, size_t count) override;
  std::unique_ptr<CommHandle> ibroadcast(float* data, size_t count, int root) override;
  // Completes before it returns (the handle's wait() does nothing): the overlapped gradient reduction
  // issues one per bucket, and keeping them all in flight would pin a host copy of every gradient.
  std::unique_ptr<CommHandle> ireduce(float* data, size_t count, int root) override;

  class PinnedBuffer;  // page-locked host memory, recycled between operations

 private:
  std::unique_ptr<PinnedBuffer> acquire(size_t bytes);
  // Waits for the compute stream, then copies `bytes` of device memory into a fresh staging buffer.
  std::unique_ptr<PinnedBuffer> stage_in(const void* device, size_t bytes, size_t capacity, size_t offset = 0);
  // A handle whose wait() completes `inner`, then copies `bytes` from `host` at `offset` to `copy_back_to`
  // (none when null) and recycles `host`.
  std::unique_ptr<CommHandle> staged(std::unique_ptr<PinnedBuffer> host, std::unique_ptr<CommHandle> inner,
                                     void* copy_back_to, size_t bytes, size_t offset = 0);
  void copy_back(const PinnedBuffer& host, size_t offset, void* device, size_t bytes);
  void recycle(std::unique_ptr<PinnedBuffer> buffer);
  class Handle;

  std::unique_ptr<Comm> host_;
  cudaStream_t compute_ = nullptr;
  std::vector<std::unique_ptr<PinnedBuffer>> free_;  // recycled staging buffers
};

}  // namespace iris
