// Communicators for DEVICE buffers (docs/design.md decision 4): --parallel.comm nccl (NcclComm, one GPU per rank) or
// mpi (StagedComm: MpiComm through host memory, so several ranks may share a GPU and clusters without
// NCCL still run). Both implement Comm; "complete" means complete for the compute stream: work
// enqueued on it after wait() (or after a blocking call) sees the result, and the host has checked the
// operation finished within parallel.timeout_s. This header needs no CUDA headers (CPU builds use it).
#pragma once
#include <string>

#include "parallel/comm.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace iris {

enum class CommKind { Nccl, Mpi };

// "nccl" | "mpi"; throws UserError naming `key` otherwise.
CommKind parse_comm_kind(const std::string& text, const std::string& key = "parallel.comm");
const char* to_string(CommKind kind);
// Empty when this build can run `kind` on device buffers, else why not and what to do.
std::string device_comm_unavailable_reason(CommKind kind);

// A Comm whose buffers are device memory; its operations are ordered after the work enqueued on the
// compute stream (default: the legacy default stream, 0) before they were issued.
class DeviceComm : public Comm {
 public:
  virtual void set_compute_stream(CUstream_st* stream) = 0;
  virtual CUstream_st* compute_stream() const = 0;
};

struct Topology;

// MPI must be initialised. Selects this rank's GPU (local rank modulo the devices of its node; nccl
// needs a GPU of its own per rank and says so otherwise) and builds every group of `topo` as a
// DeviceComm of `kind`. Collective over MPI_COMM_WORLD. timeout_s as in make_mpi_communicators.
Communicators make_device_communicators(const Topology& topo, bool tied_embedding_group, double timeout_s,
                                        CommKind kind);

// Sets the compute stream of every group in `c` (all of them DeviceComms).
void set_compute_stream(Communicators& c, CUstream_st* stream);

}  // namespace iris
