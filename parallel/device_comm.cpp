#include "parallel/device_comm.h"

#include <mpi.h>

#include "parallel/topology.h"
#include "src/core/check.h"

#if IRIS_WITH_CUDA
#include "parallel/cuda_util.h"
#include "parallel/staged_comm.h"
#endif
#if IRIS_WITH_NCCL
#include "parallel/nccl_comm.h"
#endif

namespace iris {

CommKind parse_comm_kind(const std::string& text, const std::string& key) {
  if (text == "nccl") return CommKind::Nccl;
  if (text == "mpi") return CommKind::Mpi;
  throw UserError(fmt::format("{} must be nccl or mpi, got \"{}\"", key, text));
}

const char* to_string(CommKind kind) { return kind == CommKind::Nccl ? "nccl" : "mpi"; }

std::string device_comm_unavailable_reason(CommKind kind) {
#if !IRIS_WITH_CUDA
  if (kind == CommKind::Nccl)
    return "parallel.comm=nccl needs a CUDA build with NCCL, and this build has no CUDA backend (nvcc was not found "
           "when it was configured); use parallel.comm=mpi";
  return "GPU buffers need a CUDA build, and this build has no CUDA backend (nvcc was not found when it was "
         "configured)";
#elif !IRIS_WITH_NCCL
  if (kind == CommKind::Nccl)
    return "parallel.comm=nccl needs NCCL, and this build was configured without it (nccl.h and libnccl.so were not "
           "found; install libnccl-dev or pass -DNCCL_ROOT=DIR to cmake), or use parallel.comm=mpi (host-staged)";
  return "";
#else
  return "";
#endif
}

#if IRIS_WITH_CUDA
namespace {

// Local rank modulo the node's devices. NCCL needs a GPU per rank (it refuses two ranks of one
// communicator on one device), so nccl says what to do when ranks would share.
void select_device(CommKind kind) {
  MPI_Comm node;
  IRIS_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);
  IRIS_USER_CHECK(rc == cudaSuccess && devices > 0, "parallel.comm: no CUDA device is visible to this rank ({})",
                  rc == cudaSuccess ? "cudaGetDeviceCount found 0 devices" : cudaGetErrorString(rc));
  IRIS_USER_CHECK(kind != CommKind::Nccl || local_size <= devices,
                  "parallel.comm=nccl needs a GPU of its own for every rank, but {} ranks on this node share {} "
                  "GPU(s); start at most {} ranks per node, or use parallel.comm=mpi (host-staged, GPUs may be shared)",
                  local_size, devices, devices);
  IRIS_CUDA_CHECK(cudaSetDevice(local_rank % devices));
}

}  // namespace
#endif

Communicators make_device_communicators(const Topology& topo, bool tied_embedding_group, double timeout_s,
                                        CommKind kind) {
  const std::string unavailable = device_comm_unavailable_reason(kind);
  IRIS_USER_CHECK(unavailable.empty(), "{}", unavailable);
#if IRIS_WITH_CUDA
  select_device(kind);
  Communicators host = make_mpi_communicators(topo, tied_embedding_group, timeout_s);
  // Groups are created in the same order on every rank (NCCL's initialisation is collective).
  auto wrap = [&](std::unique_ptr<Comm> group, std::vector<int> world_ranks) -> std::unique_ptr<Comm> {
    if (!group) return nullptr;
#if IRIS_WITH_NCCL
    if (kind == CommKind::Nccl) return std::make_unique<NcclComm>(std::move(group), std::move(world_ranks), timeout_s);
#endif
    return std::make_unique<StagedComm>(std::move(group));
  };
  std::vector<int> world(topo.world);
  for (int r = 0; r < topo.world; ++r) world[r] = r;
  Communicators c;
  c.world = wrap(std::move(host.world), world);
  c.tp = wrap(std::move(host.tp), topo.tp_group());
  c.dp = wrap(std::move(host.dp), topo.dp_group());
  c.pp = wrap(std::move(host.pp), topo.pp_group());
  c.model_parallel = wrap(std::move(host.model_parallel), topo.model_parallel_group());
  if (host.embedding) {
    const std::vector<int> stages = topo.pp_group();  // the embedding group: first and last stage, by stage
    c.embedding = wrap(std::move(host.embedding), {stages.front(), stages.back()});
  }
  return c;
#else
  (void)topo, (void)tied_embedding_group, (void)timeout_s;
  return {};
#endif
}

void set_compute_stream(Communicators& c, CUstream_st* stream) {
  for (Comm* group : {c.world.get(), c.tp.get(), c.pp.get(), c.dp.get(), c.model_parallel.get(), c.embedding.get()}) {
    if (group == nullptr) continue;
    auto* device = dynamic_cast<DeviceComm*>(group);
    IRIS_CHECK(device != nullptr, "group {} is not a device communicator (built by make_mpi_communicators?)",
               group->name());
    device->set_compute_stream(stream);
  }
}

}  // namespace iris
