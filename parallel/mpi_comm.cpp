// MpiComm: the communicator interface over MPI for CPU buffers. Errors return codes
// (MPI_ERRORS_RETURN) so a failed call is reported with the group, the call and the rank.
#include <mpi.h>

#include "parallel/comm.h"
#include "parallel/topology.h"
#include "src/core/check.h"

namespace iris {
namespace {

MPI_Op to_mpi(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : MPI_MAX; }

class MpiHandle : public CommHandle {
 public:
  explicit MpiHandle(MPI_Request r) : request_(r) {}
  ~MpiHandle() override {
    if (request_ != MPI_REQUEST_NULL) MPI_Request_free(&request_);
  }
  void wait() override { IRIS_MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE)); }

 private:
  MPI_Request request_;
};

class MpiComm : public Comm {
 public:
  MpiComm(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
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
    IRIS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, checked(count), MPI_FLOAT, to_mpi(op), comm_));
  }
  void all_reduce(double* data, size_t count, ReduceOp op) override {
    if (size_ == 1) return;
    IRIS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, checked(count), MPI_DOUBLE, to_mpi(op), comm_));
  }
  void reduce_scatter(const float* send, float* recv, size_t count) override {
    IRIS_MPI_CHECK(MPI_Reduce_scatter_block(send, recv, checked(count), MPI_FLOAT, MPI_SUM, comm_));
  }
  void all_gather(const float* send, float* recv, size_t count) override {
    const void* src = (send == recv + rank_ * count) ? MPI_IN_PLACE : send;
    IRIS_MPI_CHECK(MPI_Allgather(src, checked(count), MPI_FLOAT, recv, checked(count), MPI_FLOAT, comm_));
  }
  void broadcast(float* data, size_t count, int root) override {
    if (size_ == 1) return;
    IRIS_MPI_CHECK(MPI_Bcast(data, checked(count), MPI_FLOAT, root, comm_));
  }
  void broadcast_bytes(void* data, size_t bytes, int root) override {
    if (size_ == 1) return;
    IRIS_MPI_CHECK(MPI_Bcast(data, checked(bytes), MPI_BYTE, root, comm_));
  }
  void barrier() override { IRIS_MPI_CHECK(MPI_Barrier(comm_)); }

  std::unique_ptr<CommHandle> isend(const float* data, size_t count, int peer, int tag) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Isend(data, checked(count), MPI_FLOAT, peer, tag, comm_, &r));
    return std::make_unique<MpiHandle>(r);
  }
  std::unique_ptr<CommHandle> irecv(float* data, size_t count, int peer, int tag) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Irecv(data, checked(count), MPI_FLOAT, peer, tag, comm_, &r));
    return std::make_unique<MpiHandle>(r);
  }
  std::unique_ptr<CommHandle> iall_reduce(float* data, size_t count, ReduceOp op) override {
    MPI_Request r;
    IRIS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, checked(count), MPI_FLOAT, to_mpi(op), comm_, &r));
    return std::make_unique<MpiHandle>(r);
  }

 private:
  int checked(size_t count) const {
    IRIS_CHECK(count <= static_cast<size_t>(INT32_MAX), "{} group: message of {} elements exceeds MPI's int count",
               name_, count);
    return static_cast<int>(count);
  }
  MPI_Comm comm_;
  std::string name_;
  int rank_ = 0, size_ = 1;
};

std::unique_ptr<Comm> split(int color, int key, const char* name) {
  MPI_Comm c;
  IRIS_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, key, &c));
  if (c == MPI_COMM_NULL) return nullptr;
  return std::make_unique<MpiComm>(c, name);
}

}  // namespace

Communicators make_mpi_communicators(const Topology& topo, bool tied_embedding_group) {
  Communicators c;
  c.world = std::make_unique<MpiComm>(MPI_COMM_WORLD, "world");
  // Colour = the coordinates the group shares; key = the coordinate that varies (so group rank = it).
  c.tp = split(topo.pp_rank * topo.dp + topo.dp_rank, topo.tp_rank, "tp");
  c.dp = split(topo.pp_rank * topo.tp + topo.tp_rank, topo.dp_rank, "dp");
  c.pp = split(topo.dp_rank * topo.tp + topo.tp_rank, topo.pp_rank, "pp");
  c.model_parallel = split(topo.dp_rank, topo.pp_rank * topo.tp + topo.tp_rank, "model-parallel");
  if (tied_embedding_group && topo.pp > 1) {
    bool member = topo.is_first_stage() || topo.is_last_stage();
    c.embedding = split(member ? topo.dp_rank * topo.tp + topo.tp_rank : MPI_UNDEFINED, topo.pp_rank, "embedding");
  }
  return c;
}

}  // namespace iris
