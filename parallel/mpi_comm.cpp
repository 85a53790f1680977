// MpiComm: the communicator interface over MPI for CPU buffers. Errors return codes
// (MPI_ERRORS_RETURN) so a failed call is reported with the group, the call and the rank. Every
// operation is started non-blocking and completed by the MpiWatchdog, so one that does not complete
// within parallel.timeout_s names itself and the missing ranks and ends the job instead of hanging.
#include <mpi.h>

#include "parallel/comm.h"
#include "parallel/mpi_watchdog.h"
#include "parallel/topology.h"
#include "src/core/check.h"

namespace iris {
namespace {

MPI_Op to_mpi(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : MPI_MAX; }

class MpiHandle : public CommHandle {
 public:
  MpiHandle(MPI_Request r, MpiWatchdog* watchdog, MPI_Comm comm, CommOp op)
      : request_(r), watchdog_(watchdog), comm_(comm), op_(op) {}
  ~MpiHandle() override {
    if (request_ != MPI_REQUEST_NULL) MPI_Request_free(&request_);
  }
  void wait() override { watchdog_->wait(&request_, comm_, op_); }

 private:
  MPI_Request request_;
  MpiWatchdog* watchdog_;
  MPI_Comm comm_;
  CommOp op_;
};

class MpiComm : public Comm {
 public:
  MpiComm(MPI_Comm comm, std::string name, std::shared_ptr<MpiWatchdog> watchdog)
      : comm_(comm), name_(std::move(name)), watchdog_(std::move(watchdog)) {
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiComm() override {
    if (comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }

  void all_reduce(float* data, size_t count, ReduceOp op) override {
    if (size_ == 1) return;
    iall_reduce(data, count, op)->wait();
  }
  void all_reduce(double* data, size_t count, ReduceOp op) override {
    if (size_ == 1) return;
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, checked(count), MPI_DOUBLE, to_mpi(op), comm_, &r));
    complete(r, "all_reduce");
  }
  void reduce_scatter(const float* send, float* recv, size_t count) override {
    ireduce_scatter(send, recv, count)->wait();
  }
  void all_gather(const float* send, float* recv, size_t count) override { iall_gather(send, recv, count)->wait(); }
  void broadcast(float* data, size_t count, int root) override {
    if (size_ == 1) return;
    ibroadcast(data, count, root)->wait();
  }
  void broadcast_bytes(void* data, size_t bytes, int root) override {
    if (size_ == 1) return;
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Ibcast(data, checked(bytes), MPI_BYTE, root, comm_, &r));
    complete(r, "broadcast");
  }
  void barrier() override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Ibarrier(comm_, &r));
    complete(r, "barrier");
  }

  std::unique_ptr<CommHandle> isend(const float* data, size_t count, int peer, int tag) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Isend(data, checked(count), MPI_FLOAT, peer, tag, comm_, &r));
    return std::make_unique<MpiHandle>(r, watchdog_.get(), comm_, CommOp{"send to", &name_, 0, peer, tag});
  }
  std::unique_ptr<CommHandle> irecv(float* data, size_t count, int peer, int tag) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Irecv(data, checked(count), MPI_FLOAT, peer, tag, comm_, &r));
    return std::make_unique<MpiHandle>(r, watchdog_.get(), comm_, CommOp{"recv from", &name_, 0, peer, tag});
  }
  std::unique_ptr<CommHandle> iall_reduce(float* data, size_t count, ReduceOp op) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, checked(count), MPI_FLOAT, to_mpi(op), comm_, &r));
    return collective(r, "all_reduce");
  }
  std::unique_ptr<CommHandle> ireduce_scatter(const float* send, float* recv, size_t count) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Ireduce_scatter_block(send, recv, checked(count), MPI_FLOAT, MPI_SUM, comm_, &r));
    return collective(r, "reduce_scatter");
  }
  std::unique_ptr<CommHandle> iall_gather(const float* send, float* recv, size_t count) override {
    const void* src = (send == recv + rank_ * count) ? MPI_IN_PLACE : send;
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Iallgather(src, checked(count), MPI_FLOAT, recv, checked(count), MPI_FLOAT, comm_, &r));
    return collective(r, "all_gather");
  }
  std::unique_ptr<CommHandle> ibroadcast(float* data, size_t count, int root) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Ibcast(data, checked(count), MPI_FLOAT, root, comm_, &r));
    return collective(r, "broadcast");
  }
  std::unique_ptr<CommHandle> ireduce(float* data, size_t count, int root) override {
    MPI_Request r;
    const void* send = rank_ == root ? MPI_IN_PLACE : data;  // the root's recvbuf only matters
    IRIS_MPI_CHECK(MPI_Ireduce(send, data, checked(count), MPI_FLOAT, MPI_SUM, root, comm_, &r));
    return collective(r, "reduce");
  }

 private:
  int checked(size_t count) const {
    IRIS_CHECK(count <= static_cast<size_t>(INT32_MAX), "{} group: message of {} elements exceeds MPI's int count",
               name_, count);
    return static_cast<int>(count);
  }
  CommOp collective_op(const char* kind) { return CommOp{kind, &name_, ++collectives_}; }
  void complete(MPI_Request& r, const char* kind) { watchdog_->wait(&r, comm_, collective_op(kind)); }
  std::unique_ptr<CommHandle> collective(MPI_Request r, const char* op) {
    return std::make_unique<MpiHandle>(r, watchdog_.get(), comm_, collective_op(op));
  }

  MPI_Comm comm_;
  std::string name_;
  std::shared_ptr<MpiWatchdog> watchdog_;
  int rank_ = 0, size_ = 1;
  long long collectives_ = 0;
};

std::unique_ptr<Comm> split(int color, int key, const char* name, const std::shared_ptr<MpiWatchdog>& watchdog) {
  MPI_Comm c;
  IRIS_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, key, &c));
  if (c == MPI_COMM_NULL) return nullptr;
  return std::make_unique<MpiComm>(c, name, watchdog);
}

}  // namespace

Communicators make_mpi_communicators(const Topology& topo, bool tied_embedding_group, double timeout_s) {
  Communicators c;
  auto watchdog = std::make_shared<MpiWatchdog>(timeout_s);
  c.world = std::make_unique<MpiComm>(MPI_COMM_WORLD, "world", watchdog);
  const auto group = [&](Topology::GroupSplit g, const char* name) {
    return split(g.colour < 0 ? MPI_UNDEFINED : g.colour, g.key, name, watchdog);
  };
  c.tp = group(topo.tp_split(), "tp");
  c.dp = group(topo.dp_split(), "dp");
  c.pp = group(topo.pp_split(), "pp");
  c.model_parallel = group(topo.model_parallel_split(), "model-parallel");
  if (tied_embedding_group && topo.pp > 1) c.embedding = group(topo.embedding_split(), "embedding");
  return c;
}

}  // namespace iris
