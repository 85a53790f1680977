// Device communicators on one GPU and one MPI rank (a singleton: no mpirun, as on a GPU machine
// without MPI's launcher): NcclComm and StagedComm do every operation on device buffers with checked
// results (guard elements catch writes past a block), order against a compute stream, and fail fast —
// an operation that cannot complete reports itself and ends the process (death tests, re-executed).
// Several-rank behaviour needs mpirun and several GPUs; that is the trainer integration's test.
#include <mpi.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "parallel/cuda_util.h"
#include "parallel/device_comm.h"
#include "parallel/staged_comm.h"
#include "parallel/topology.h"
#include "tests/gpu/comm_test_kernels.h"
#include "tests/gpu/gpu_skip.h"
#if IRIS_TEST_HAVE_NCCL
#include "parallel/nccl_comm.h"
#endif

namespace iris {
namespace {

// MPI starts in the first test that needs it (listing the tests starts nothing) and ends after all.
class MpiEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Finalize();
  }
};
[[maybe_unused]] const auto* const kMpiEnvironment = ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

void ensure_mpi() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  }
}

// A one-rank world group of `kind` with its own compute stream. timeout_s: parallel.timeout_s.
std::unique_ptr<DeviceComm> make_world(CommKind kind, double timeout_s) {
  ensure_mpi();
  Communicators host = make_mpi_communicators(Topology::make(1, 0, 1, 1), false, timeout_s);
#if IRIS_TEST_HAVE_NCCL
  if (kind == CommKind::Nccl) return std::make_unique<NcclComm>(std::move(host.world), std::vector<int>{0}, timeout_s);
#endif
  return std::make_unique<StagedComm>(std::move(host.world));
}

template <typename T>
class Device {
 public:
  explicit Device(const std::vector<T>& host) : n_(host.size()) {
    IRIS_CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(n_, 1) * sizeof(T)));
    IRIS_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Device() { cudaFree(ptr_); }
  T* get() const { return ptr_; }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    IRIS_CUDA_CHECK(cudaDeviceSynchronize());
    IRIS_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

std::vector<float> iota(size_t n, float first) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

constexpr float kGuard = -7.5f;  // values after a block; an operation must leave them alone
constexpr size_t kGuards = 5;

std::vector<float> with_guards(std::vector<float> v) {
  v.insert(v.end(), kGuards, kGuard);
  return v;
}

std::string kind_name(const ::testing::TestParamInfo<CommKind>& info) {
  return info.param == CommKind::Nccl ? "nccl" : "mpi";
}

class DeviceCommTest : public ::testing::TestWithParam<CommKind> {
 protected:
  void SetUp() override {
    IRIS_REQUIRE_GPU();
    if (GetParam() == CommKind::Nccl) {
#if !IRIS_TEST_HAVE_NCCL
      GTEST_SKIP() << "this build has no NCCL: " << device_comm_unavailable_reason(CommKind::Nccl);
#endif
    }
    IRIS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  std::unique_ptr<DeviceComm> world(double timeout_s = 60) {
    auto comm = make_world(GetParam(), timeout_s);
    comm->set_compute_stream(stream_);
    return comm;
  }
  cudaStream_t stream_ = nullptr;
};

// Sizes: tiny, odd, and one past NCCL's and our staging buffers' usual chunk sizes.
const std::vector<size_t> kCounts = {1, 1000, (size_t{1} << 22) + 3};

TEST_P(DeviceCommTest, EveryCollectiveOnDeviceBuffers) {
  auto comm = world();
  ASSERT_EQ(comm->size(), 1);
  ASSERT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->name(), "world");
  for (size_t n : kCounts) {
    SCOPED_TRACE("count " + std::to_string(n));
    const std::vector<float> values = iota(n, 0.25f);
    const std::vector<float> expected = with_guards(values);

    Device<float> sum(with_guards(values));
    comm->all_reduce(sum.get(), n, ReduceOp::Sum);
    EXPECT_EQ(sum.download(), expected) << "all_reduce sum";

    Device<float> max(with_guards(values));
    comm->iall_reduce(max.get(), n, ReduceOp::Max)->wait();
    EXPECT_EQ(max.download(), expected) << "iall_reduce max";

    std::vector<double> dvalues(n);
    for (size_t i = 0; i < n; ++i) dvalues[i] = 1.0 / (i + 3.0);
    Device<double> dsum(dvalues);
    comm->all_reduce(dsum.get(), n, ReduceOp::Sum);
    EXPECT_EQ(dsum.download(), dvalues) << "all_reduce double";

    // One rank: its block of the reduce-scatter is the whole input, the gather is its block.
    Device<float> rs_send(values), rs_recv(with_guards(std::vector<float>(n, 0.0f)));
    comm->reduce_scatter(rs_send.get(), rs_recv.get(), n);
    EXPECT_EQ(rs_recv.download(), expected) << "reduce_scatter";
    Device<float> irs_recv(with_guards(std::vector<float>(n, 0.0f)));
    comm->ireduce_scatter(rs_send.get(), irs_recv.get(), n)->wait();
    EXPECT_EQ(irs_recv.download(), expected) << "ireduce_scatter";

    Device<float> ag_send(values), ag_recv(with_guards(std::vector<float>(n, 0.0f)));
    comm->all_gather(ag_send.get(), ag_recv.get(), n);
    EXPECT_EQ(ag_recv.download(), expected) << "all_gather";
    Device<float> ag_in_place(with_guards(values));
    comm->iall_gather(ag_in_place.get(), ag_in_place.get(), n)->wait();
    EXPECT_EQ(ag_in_place.download(), expected) << "iall_gather in place";

    Device<float> bcast(with_guards(values));
    comm->broadcast(bcast.get(), n, 0);
    EXPECT_EQ(bcast.download(), expected) << "broadcast";
    comm->ibroadcast(bcast.get(), n, 0)->wait();
    EXPECT_EQ(bcast.download(), expected) << "ibroadcast";

    Device<float> reduced(with_guards(values));  // one rank: the sum is its own input, in place
    comm->ireduce(reduced.get(), n, 0)->wait();
    EXPECT_EQ(reduced.download(), expected) << "ireduce";
  }
  std::vector<unsigned char> bytes(13);
  std::iota(bytes.begin(), bytes.end(), 200);
  Device<unsigned char> dbytes(bytes);
  comm->broadcast_bytes(dbytes.get(), bytes.size(), 0);
  EXPECT_EQ(dbytes.download(), bytes) << "broadcast_bytes";
  comm->barrier();
}

// Send/recv with itself: both posted before either is waited (as an exchange between two stages is).
TEST_P(DeviceCommTest, SendAndRecvWithItself) {
  auto comm = world();
  for (size_t n : kCounts) {
    SCOPED_TRACE("count " + std::to_string(n));
    const std::vector<float> first = iota(n, 1.0f), second = iota(n, -3.0f);
    Device<float> send_a(first), send_b(second);
    Device<float> recv_a(with_guards(std::vector<float>(n, 0.0f))), recv_b(with_guards(std::vector<float>(n, 0.0f)));
    auto s1 = comm->isend(send_a.get(), n, 0, 11);
    auto s2 = comm->isend(send_b.get(), n, 0, 12);
    auto r1 = comm->irecv(recv_a.get(), n, 0, 11);
    auto r2 = comm->irecv(recv_b.get(), n, 0, 12);
    r1->wait();
    r2->wait();
    s1->wait();
    s2->wait();
    EXPECT_EQ(recv_a.download(), with_guards(first));
    EXPECT_EQ(recv_b.download(), with_guards(second));
  }
}

// The operation reads what the compute stream wrote before it was issued: a kernel that writes its
// values only after a second is still running when the all-gather is issued, and the gather must see them.
TEST_P(DeviceCommTest, OperationsAreOrderedAfterTheComputeStream) {
  auto comm = world();
  const size_t n = 4096;
  Device<float> src(std::vector<float>(n, 1.0f)), dst(with_guards(std::vector<float>(n, 0.0f)));
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
  test::fill_after_delay(src.get(), n, 42.0f, 1000.0, stream_);
  const auto start = std::chrono::steady_clock::now();
  auto handle = comm->iall_gather(src.get(), dst.get(), n);
  const double issue_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (GetParam() == CommKind::Nccl) {
    // NCCL issues without waiting for the compute stream (the host is free to enqueue more work).
    EXPECT_LT(issue_ms, 800.0) << "iall_gather blocked the host until the compute stream was done";
    EXPECT_EQ(cudaStreamQuery(stream_), cudaErrorNotReady) << "the delay kernel finished before the gather was issued";
  }
  handle->wait();
  EXPECT_EQ(dst.download(), with_guards(std::vector<float>(n, 42.0f)));
  // After wait(), compute work sees the result: an all-reduce in place, then a kernel overwrite.
  auto reduce = comm->iall_reduce(dst.get(), n, ReduceOp::Sum);
  reduce->wait();
  test::fill_after_delay(dst.get(), 1, -1.0f, 0.0, stream_);
  std::vector<float> expected = with_guards(std::vector<float>(n, 42.0f));
  expected[0] = -1.0f;
  EXPECT_EQ(dst.download(), expected);
}

TEST_P(DeviceCommTest, HostBuffersAreRefusedByName) {
  auto comm = world();
  std::vector<float> host(8, 1.0f);
  try {
    comm->all_reduce(host.data(), host.size(), ReduceOp::Sum);
    ADD_FAILURE() << "a host buffer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not device memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("all_reduce on group world"), std::string::npos) << e.what();
  }
}

// The factory builds every group of the one-rank topology as a device communicator.
TEST_P(DeviceCommTest, FactoryBuildsEveryGroup) {
  ensure_mpi();
  Communicators c = make_device_communicators(Topology::make(1, 0, 1, 1), true, 60, GetParam());
  for (Comm* group : {c.world.get(), c.tp.get(), c.dp.get(), c.pp.get(), c.model_parallel.get()}) {
    ASSERT_NE(group, nullptr);
    EXPECT_EQ(group->size(), 1) << group->name();
    EXPECT_NE(dynamic_cast<DeviceComm*>(group), nullptr) << group->name();
  }
  EXPECT_EQ(c.embedding, nullptr) << "pp = 1 has no tied-embedding group";
  set_compute_stream(c, stream_);
  EXPECT_EQ(dynamic_cast<DeviceComm*>(c.tp.get())->compute_stream(), stream_);
  Device<float> data(iota(100, 2.0f));
  c.tp->all_reduce(data.get(), 100, ReduceOp::Sum);
  c.dp->broadcast(data.get(), 100, 0);
  EXPECT_EQ(data.download(), iota(100, 2.0f));
}

INSTANTIATE_TEST_SUITE_P(Kinds, DeviceCommTest, ::testing::Values(CommKind::Nccl, CommKind::Mpi), kind_name);

// --- Fail fast. The failing operation ends the process (MPI_Abort), so each runs in a death test:
// re-executed ("threadsafe"), as CUDA and NCCL do not survive fork.

bool exited_with_failure(int status) { return !(WIFEXITED(status) && WEXITSTATUS(status) == 0); }

void log_to_stderr() { spdlog::set_default_logger(spdlog::stderr_color_mt("comm-test")); }

using DeviceCommDeathTest = DeviceCommTest;

// A collective stuck behind a compute stream that never finishes (a kernel spinning on a flag nobody
// sets, bounded to 20 s) must report itself after parallel.timeout_s and abort. For MPI the stuck
// operation is a recv nobody sends (a collective of one rank cannot wait for anyone).
TEST_P(DeviceCommDeathTest, StuckOperationReportsAndAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  if (GetParam() == CommKind::Nccl) {
    auto stuck_all_reduce = [this] {
      log_to_stderr();
      auto comm = world(/*timeout_s=*/5);
      int* flag = nullptr;
      IRIS_CUDA_CHECK(cudaHostAlloc(&flag, sizeof(int), cudaHostAllocMapped));
      *flag = 0;
      int* device_flag = nullptr;
      IRIS_CUDA_CHECK(cudaHostGetDevicePointer(&device_flag, flag, 0));
      Device<float> data(std::vector<float>(16, 1.0f));
      test::spin_until_flag(device_flag, 20e3, stream_);
      comm->all_reduce(data.get(), 16, ReduceOp::Sum);
    };
    EXPECT_EXIT(stuck_all_reduce(), exited_with_failure,
                "all_reduce #1 of group world \\(NCCL\\) has not completed after [0-9.]+ s \\(parallel.timeout_s = 5\\)");
  } else {
    auto unmatched_recv = [this] {
      log_to_stderr();
      auto comm = world(/*timeout_s=*/1);
      Device<float> data(std::vector<float>(16, 1.0f));
      comm->irecv(data.get(), 16, 0, 7)->wait();
    };
    EXPECT_EXIT(unmatched_recv(), exited_with_failure,
                "recv from world rank 0 \\(tag 7\\) has not completed after [0-9.]+ s \\(parallel.timeout_s = 1\\)");
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, DeviceCommDeathTest, ::testing::Values(CommKind::Nccl, CommKind::Mpi), kind_name);

}  // namespace
}  // namespace iris
