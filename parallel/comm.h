// Communicator interface (docs/design.md decision 4): every collective and point-to-point operation Iris uses, on a
// group of ranks. MpiComm implements it for CPU buffers; NcclComm for GPU buffers.
// All parallel logic is written against this interface and never calls MPI or NCCL directly.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace iris {

enum class ReduceOp { Sum, Max };

// An operation in flight; wait() blocks until it is complete.
class CommHandle {
 public:
  virtual ~CommHandle() = default;
  virtual void wait() = 0;
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;   // rank within this group
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;  // "tp", "dp", "pp", "world", ... for messages

  // In place over count floats. All ranks of the group must call in the same order.
  virtual void all_reduce(float* data, size_t count, ReduceOp op) = 0;
  virtual void all_reduce(double* data, size_t count, ReduceOp op) = 0;
  // send holds size()·count floats; this rank's reduced block [rank·count, (rank+1)·count) lands in recv.
  virtual void reduce_scatter(const float* send, float* recv, size_t count) = 0;
  // send holds count floats; recv receives size()·count, block r from group rank r. send may alias
  // recv + rank·count (in place).
  virtual void all_gather(const float* send, float* recv, size_t count) = 0;
  virtual void broadcast(float* data, size_t count, int root) = 0;
  virtual void broadcast_bytes(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;

  // Point-to-point with a group rank; asynchronous, completed by wait().
  virtual std::unique_ptr<CommHandle> isend(const float* data, size_t count, int peer, int tag) = 0;
  virtual std::unique_ptr<CommHandle> irecv(float* data, size_t count, int peer, int tag) = 0;
  // Collectives started now and completed by wait(); the buffers must stay untouched until then.
  virtual std::unique_ptr<CommHandle> iall_reduce(float* data, size_t count, ReduceOp op) = 0;
  virtual std::unique_ptr<CommHandle> ireduce_scatter(const float* send, float* recv, size_t count) = 0;
  virtual std::unique_ptr<CommHandle> iall_gather(const float* send, float* recv, size_t count) = 0;
  virtual std::unique_ptr<CommHandle> ibroadcast(float* data, size_t count, int root) = 0;
  // Sum of every rank's count floats into `data` on `root` (in place); the other ranks' data is only
  // read. The ZeRO-1 gradient reduction overlapped with backward (src/train/grad_reduce.h) uses it.
  virtual std::unique_ptr<CommHandle> ireduce(float* data, size_t count, int root) = 0;
  // Issues the point-to-point operations this group has queued (NcclComm batches isend/irecv until a
  // wait, so that an exchange cannot deadlock); a no-op where operations start at once.
  virtual void flush() {}
};

// The MPI world and the groups of a Topology, built once at start-up.
struct Topology;
struct Communicators {
  std::unique_ptr<Comm> world, tp, pp, dp, model_parallel;
  // Ranks holding a copy of the tied embedding (first and last pipeline stage); null when unused.
  std::unique_ptr<Comm> embedding;
};

// MPI must be initialised. Builds the groups of `topo` with MPI_Comm_split. An operation that does
// not complete within timeout_s seconds (<= 0: no limit) logs itself and the ranks still missing and
// aborts the job (parallel/mpi_watchdog.h).
Communicators make_mpi_communicators(const Topology& topo, bool tied_embedding_group, double timeout_s);

}  // namespace iris
