#include "parallel/nccl_comm.h"

#include <mpi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "parallel/cuda_util.h"
#include "src/core/check.h"

// Every NCCL call of a communicator: a failure names the call, file:line, the rank (through
// throw_check_failure) and NCCL's own last error text.
#define IRIS_NCCL_CHECK(call) check((call), #call, __FILE__, __LINE__)

namespace iris {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

ncclRedOp_t to_nccl(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : ncclMax; }

// Every NcclComm of the process, so a rank about to block first issues the sends it queued.
std::mutex g_registry_mutex;
std::vector<NcclComm*> g_registry;

// Spin briefly (most operations finish within microseconds of each other), then poll gently.
void pause_while_waiting(double waited_s) {
  if (waited_s < 2e-3) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(waited_s < 0.1 ? 50 : 1000));
  }
}

}  // namespace

struct NcclComm::Completion {
  cudaEvent_t event = nullptr;  // recorded on the communication stream after the operation
  std::string op;               // "all_reduce #3 of group tp", for messages
  bool issued = false;          // false while a queued isend/irecv waits for start_pending()
  Completion() { IRIS_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming)); }
  ~Completion() { cudaEventDestroy(event); }
};

struct NcclComm::PointToPoint {
  bool send;
  void* data;
  size_t count;
  int peer;
  std::shared_ptr<Completion> completion;
};

namespace {

class NcclHandle : public CommHandle {
 public:
  NcclHandle(NcclComm* comm, std::shared_ptr<NcclComm::Completion> c) : comm_(comm), completion_(std::move(c)) {}
  void wait() override {
    if (!completion_->issued) NcclComm::start_all_pending();
    comm_->complete(*completion_);
  }

 private:
  NcclComm* comm_;
  std::shared_ptr<NcclComm::Completion> completion_;
};

}  // namespace

NcclComm::NcclComm(std::unique_ptr<Comm> host_group, std::vector<int> world_ranks, double timeout_s)
    : host_group_(std::move(host_group)), world_ranks_(std::move(world_ranks)), timeout_s_(timeout_s) {
  IRIS_CHECK(static_cast<int>(world_ranks_.size()) == host_group_->size(),
             "group {}: {} world ranks given for {} members", name(), world_ranks_.size(), host_group_->size());
  ncclUniqueId id{};
  if (rank() == 0) IRIS_NCCL_CHECK(ncclGetUniqueId(&id));
  host_group_->broadcast_bytes(&id, sizeof(id), 0);
  // Non-blocking: calls return ncclInProgress and are polled (await_ready), which is what lets a rank
  // that gave up on an operation abort the communicator instead of hanging in it (NCCL docs, "Fault
  // tolerance").
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const std::string comm_name = "iris-" + name();
  config.commName = comm_name.c_str();
  IRIS_NCCL_CHECK(ncclCommInitRankConfig(&comm_, size(), id, rank(), &config));
  IRIS_CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
  barrier_scratch_ = DeviceBuffer<float>(1);
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  g_registry.push_back(this);
}

NcclComm::~NcclComm() {
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    g_registry.erase(std::remove(g_registry.begin(), g_registry.end(), this), g_registry.end());
  }
  // Destructors must not throw: a communicator that cannot finalize cleanly is aborted.
  if (comm_ != nullptr) {
    ncclResult_t state = ncclCommFinalize(comm_);
    const Clock::time_point start = Clock::now();
    while (state == ncclInProgress && (timeout_s_ <= 0 || seconds_since(start) < timeout_s_)) {
      ncclCommGetAsyncError(comm_, &state);
      pause_while_waiting(seconds_since(start));
    }
    if (state == ncclSuccess) {
      ncclCommDestroy(comm_);
    } else {
      spdlog::warn("group {}: NCCL communicator did not finalize ({}); aborting it", name(), ncclGetErrorString(state));
      ncclCommAbort(comm_);
    }
  }
  if (comm_stream_ != nullptr) cudaStreamDestroy(comm_stream_);
}

void NcclComm::check(ncclResult_t rc, const char* call, const char* file, int line) {
  if (rc == ncclInProgress && comm_ != nullptr) {
    await_ready(call);
    ncclCommGetAsyncError(comm_, &rc);
  }
  if (rc == ncclSuccess) return;
  const char* last = comm_ != nullptr ? ncclGetLastError(comm_) : ncclGetLastError(nullptr);
  detail::throw_check_failure(call, file, line,
                              fmt::format("NCCL error on group {} (group rank {} of {}): {}{}{}", name(), rank(), size(),
                                          ncclGetErrorString(rc), last && *last ? ": " : "", last ? last : ""));
}

void NcclComm::await_ready(const char* call) {
  const Clock::time_point start = Clock::now();
  for (;;) {
    ncclResult_t state = ncclSuccess;
    ncclCommGetAsyncError(comm_, &state);
    if (state != ncclInProgress) return;
    const double waited = seconds_since(start);
    if (timeout_s_ > 0 && waited > timeout_s_) fail(call, "has not returned", waited);
    pause_while_waiting(waited);
  }
}

template <typename Issue>
std::unique_ptr<CommHandle> NcclComm::collective(const char* op, Issue&& issue) {
  start_pending();  // queued send/recv were issued before this collective by the caller's program order
  auto c = std::make_shared<Completion>();
  c->op = fmt::format("{} #{} of group {}", op, ++operations_, name());
  // The operation reads what the compute stream wrote before this call.
  IRIS_CUDA_CHECK(cudaEventRecord(c->event, compute_));
  IRIS_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, c->event, 0));
  issue();
  IRIS_CUDA_CHECK(cudaEventRecord(c->event, comm_stream_));
  c->issued = true;
  return std::make_unique<NcclHandle>(this, std::move(c));
}

std::unique_ptr<CommHandle> NcclComm::iall_reduce(float* data, size_t count, ReduceOp op) {
  require_device_buffer(data, "all_reduce", name());
  return collective("all_reduce", [&] {
    IRIS_NCCL_CHECK(ncclAllReduce(data, data, count, ncclFloat, to_nccl(op), comm_, comm_stream_));
  });
}

std::unique_ptr<CommHandle> NcclComm::ireduce_scatter(const float* send, float* recv, size_t count) {
  require_device_buffer(send, "reduce_scatter", name());
  require_device_buffer(recv, "reduce_scatter", name());
  return collective("reduce_scatter", [&] {
    IRIS_NCCL_CHECK(ncclReduceScatter(send, recv, count, ncclFloat, ncclSum, comm_, comm_stream_));
  });
}

std::unique_ptr<CommHandle> NcclComm::iall_gather(const float* send, float* recv, size_t count) {
  require_device_buffer(send, "all_gather", name());
  require_device_buffer(recv, "all_gather", name());
  // In place when send == recv + rank·count, which NCCL supports as is.
  return collective("all_gather", [&] {
    IRIS_NCCL_CHECK(ncclAllGather(send, recv, count, ncclFloat, comm_, comm_stream_));
  });
}

std::unique_ptr<CommHandle> NcclComm::ibroadcast(float* data, size_t count, int root) {
  require_device_buffer(data, "broadcast", name());
  return collective("broadcast", [&] {
    IRIS_NCCL_CHECK(ncclBroadcast(data, data, count, ncclFloat, root, comm_, comm_stream_));
  });
}

std::unique_ptr<CommHandle> NcclComm::ireduce(float* data, size_t count, int root) {
  require_device_buffer(data, "reduce", name());
  // In place on the root; NCCL ignores recvbuff elsewhere.
  return collective("reduce", [&] {
    IRIS_NCCL_CHECK(ncclReduce(data, data, count, ncclFloat, ncclSum, root, comm_, comm_stream_));
  });
}

void NcclComm::all_reduce(float* data, size_t count, ReduceOp op) { iall_reduce(data, count, op)->wait(); }

void NcclComm::all_reduce(double* data, size_t count, ReduceOp op) {
  require_device_buffer(data, "all_reduce", name());
  collective("all_reduce", [&] {
    IRIS_NCCL_CHECK(ncclAllReduce(data, data, count, ncclDouble, to_nccl(op), comm_, comm_stream_));
  })->wait();
}

void NcclComm::reduce_scatter(const float* send, float* recv, size_t count) {
  ireduce_scatter(send, recv, count)->wait();
}

void NcclComm::all_gather(const float* send, float* recv, size_t count) { iall_gather(send, recv, count)->wait(); }

void NcclComm::broadcast(float* data, size_t count, int root) { ibroadcast(data, count, root)->wait(); }

void NcclComm::broadcast_bytes(void* data, size_t bytes, int root) {
  require_device_buffer(data, "broadcast", name());
  collective("broadcast", [&] {
    IRIS_NCCL_CHECK(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, comm_stream_));
  })->wait();
}

void NcclComm::barrier() {
  collective("barrier", [&] {
    IRIS_NCCL_CHECK(ncclAllReduce(barrier_scratch_.data(), barrier_scratch_.data(), 1, ncclFloat, ncclSum, comm_, comm_stream_));
  })->wait();
}

std::unique_ptr<CommHandle> NcclComm::point_to_point(bool send, void* data, size_t count, int peer, int tag) {
  IRIS_CHECK(peer >= 0 && peer < size(), "group {}: {} peer {} is not a rank of the group (size {})", name(),
             send ? "send" : "recv", peer, size());
  auto c = std::make_shared<Completion>();
  c->op = fmt::format("{} {} rank {} (world rank {}, tag {})", send ? "send to" : "recv from", name(), peer,
                      world_ranks_[peer], tag);
  pending_.push_back(std::make_unique<PointToPoint>(PointToPoint{send, data, count, peer, c}));
  return std::make_unique<NcclHandle>(this, std::move(c));
}

std::unique_ptr<CommHandle> NcclComm::isend(const float* data, size_t count, int peer, int tag) {
  require_device_buffer(data, "send", name());
  return point_to_point(true, const_cast<float*>(data), count, peer, tag);
}

std::unique_ptr<CommHandle> NcclComm::irecv(float* data, size_t count, int peer, int tag) {
  require_device_buffer(data, "recv", name());
  return point_to_point(false, data, count, peer, tag);
}

void NcclComm::start_pending() {
  if (pending_.empty()) return;
  std::vector<std::unique_ptr<PointToPoint>> batch;
  batch.swap(pending_);
  cudaEvent_t ready = batch.front()->completion->event;  // reused below for completion
  IRIS_CUDA_CHECK(cudaEventRecord(ready, compute_));
  IRIS_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, ready, 0));
  IRIS_NCCL_CHECK(ncclGroupStart());
  for (const auto& p : batch) {
    if (p->send) {
      IRIS_NCCL_CHECK(ncclSend(p->data, p->count, ncclFloat, p->peer, comm_, comm_stream_));
    } else {
      IRIS_NCCL_CHECK(ncclRecv(p->data, p->count, ncclFloat, p->peer, comm_, comm_stream_));
    }
  }
  IRIS_NCCL_CHECK(ncclGroupEnd());
  // The group completes as a whole: every operation of it shares one completion point.
  for (const auto& p : batch) {
    IRIS_CUDA_CHECK(cudaEventRecord(p->completion->event, comm_stream_));
    p->completion->issued = true;
  }
}

void NcclComm::start_all_pending() {
  std::vector<NcclComm*> comms;
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    comms = g_registry;
  }
  for (NcclComm* c : comms) c->start_pending();
}

void NcclComm::complete(Completion& c) {
  IRIS_CUDA_CHECK(cudaStreamWaitEvent(compute_, c.event, 0));
  const Clock::time_point start = Clock::now();
  for (;;) {
    const cudaError_t state = cudaEventQuery(c.event);
    if (state == cudaSuccess) return;
    if (state != cudaErrorNotReady) IRIS_CUDA_CHECK(state);
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    const double waited = seconds_since(start);
    if (async != ncclSuccess && async != ncclInProgress)
      fail(c.op, fmt::format("failed with an NCCL asynchronous error: {} ({})", ncclGetErrorString(async),
                             ncclGetLastError(comm_)),
           waited);
    if (timeout_s_ > 0 && waited > timeout_s_) fail(c.op, "has not completed", waited);
    pause_while_waiting(waited);
  }
}

void NcclComm::fail(const std::string& op, const std::string& why, double waited_s) {
  // NCCL cannot say which member is missing (the others may be in another operation, dead, or still
  // computing); the report names the group's members so the other ranks' logs can be matched up.
  std::string members;
  for (int r = 0; r < size(); ++r)
    if (r != rank()) members += fmt::format("{}rank {} (group rank {})", members.empty() ? "" : ", ", world_ranks_[r], r);
  spdlog::error("{} (NCCL) {} after {:.1f} s (parallel.timeout_s = {}); this is rank {} (group rank {} of {})", op, why,
                waited_s, timeout_s_, world_ranks_[rank()], rank(), size());
  spdlog::error("{}: other members of group {}: {}; aborting the NCCL communicator and the job", op, name(),
                members.empty() ? "none" : members);
  spdlog::default_logger()->flush();
  ncclCommAbort(comm_);
  comm_ = nullptr;
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return
}

}  // namespace iris
