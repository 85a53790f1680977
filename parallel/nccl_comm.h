// NcclComm: the communicator interface over NCCL for device buffers, one ncclComm_t per group (its
// unique id broadcast over the group's MPI communicator). Operations run on a communication stream of
// their own, ordered after the compute stream by an event; wait() makes the compute stream wait for the
// operation and the host poll its completion and NCCL's asynchronous errors until parallel.timeout_s.
// A timeout or asynchronous error logs the operation and group, aborts the NCCL communicator (which is
// non-blocking, so abort cannot hang) and then the whole job (MPI_Abort), as MpiWatchdog does.
// Send/recv: NCCL matches point-to-point operations between two ranks in issue order (tags only label
// messages). isend/irecv are queued and issued together as one NCCL group at the next wait(), the next
// collective, or start_pending(), so an exchange (both ranks send, then receive) cannot deadlock.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <string>
#include <vector>

#include "parallel/device_comm.h"
#include "src/core/device_buffer.h"

namespace iris {

class NcclComm : public DeviceComm {
 public:
  // Collective over `host_group` (an MpiComm of the same ranks; kept for its rank and name).
  // world_ranks: the MPI world rank of each group rank, for messages. The current CUDA device must be
  // this rank's GPU. timeout_s <= 0: wait forever.
  NcclComm(std::unique_ptr<Comm> host_group, std::vector<int> world_ranks, double timeout_s);
  ~NcclComm() override;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override { return host_group_->rank(); }
  int size() const override { return host_group_->size(); }
  const std::string& name() const override { return host_group_->name(); }
  void set_compute_stream(CUstream_st* stream) override { compute_ = stream; }
  CUstream_st* compute_stream() const override { return compute_; }
  cudaStream_t comm_stream() const { return comm_stream_; }

  void all_reduce(float* data, size_t count, ReduceOp op) override;
  void all_reduce(double* data, size_t count, ReduceOp op) override;
  void reduce_scatter(const float* send, float* recv, size_t count) override;
  void all_gather(const float* send, float* recv, size_t count) override;
  void broadcast(float* data, size_t count, int root) override;
  void broadcast_bytes(void* data, size_t bytes, int root) override;
  void barrier() override;

  std::unique_ptr<CommHandle> isend(const float* data, size_t count, int peer, int tag) override;
  std::unique_ptr<CommHandle> irecv(float* data, size_t count, int peer, int tag) override;
  std::unique_ptr<CommHandle> iall_reduce(float* data, size_t count, ReduceOp op) override;
  std::unique_ptr<CommHandle> ireduce_scatter(const float* send, float* recv, size_t count) override;
  std::unique_ptr<CommHandle> iall_gather(const float* send, float* recv, size_t count) override;
  std::unique_ptr<CommHandle> ibroadcast(float* data, size_t count, int root) override;
  std::unique_ptr<CommHandle> ireduce(float* data, size_t count, int root) override;

  // Issues the queued isend/irecv of this communicator as one NCCL group (no-op when none).
  void start_pending();
  void flush() override { start_pending(); }
  // start_pending() on every NcclComm of this process: a rank about to block must not hold back a
  // send another rank waits for.
  static void start_all_pending();

  struct Completion;  // an issued (or queued) operation: its event and description
  // Makes the compute stream wait for `c` and the host poll it until done; past the deadline, or on an
  // NCCL asynchronous error, reports and aborts the job (does not return then).
  void complete(Completion& c);

 private:
  struct PointToPoint;
  template <typename Issue>
  std::unique_ptr<CommHandle> collective(const char* op, Issue&& issue);
  std::unique_ptr<CommHandle> point_to_point(bool send, void* data, size_t count, int peer, int tag);
  void check(ncclResult_t rc, const char* call, const char* file, int line);
  void await_ready(const char* call);  // non-blocking communicator: poll until the call has finished
  [[noreturn]] void fail(const std::string& op, const std::string& why, double waited_s);

  std::unique_ptr<Comm> host_group_;
  std::vector<int> world_ranks_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t comm_stream_ = nullptr;
  cudaStream_t compute_ = nullptr;
  DeviceBuffer<float> barrier_scratch_;  // (1,)
  long long operations_ = 0;          // numbers collectives in issue order (the same on every member)
  std::vector<std::unique_ptr<PointToPoint>> pending_;  // queued isend/irecv
};

}  // namespace iris
