// The `main` of the programs launched by mpirun (iris-train, iris-generate, iris-eval): MPI up, the
// rank-aware logger, the tool through run_tool (src/core/tool_main.h), and then one failed rank ends the
// whole job (MPI_Abort with its status) rather than leave the others waiting in a collective. Statuses in
// `agreed` are ones every rank reaches together (a checkpointed stop, a divergence): those leave normally.
//   int main(int argc, char** argv) { return iris::run_mpi_tool("iris-eval", argc, argv, [&](int rank, int world) { ... }); }
#pragma once
#include <mpi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <initializer_list>

#include "src/core/exit_codes.h"
#include "src/core/log.h"
#include "src/core/tool_main.h"

namespace iris {

template <class Body>
int run_mpi_tool(const char* tool, int& argc, char**& argv, Body&& body, std::initializer_list<int> agreed = {}) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  init_logging(rank, world);
  const int status = run_tool(tool, [&] { return body(rank, world); });
  const bool together = std::find(agreed.begin(), agreed.end(), status) != agreed.end();
  if (status != kExitOk && !together && world > 1) {
    spdlog::error("rank {} failed (exit status {}); ending every rank of the job", rank, status);
    MPI_Abort(MPI_COMM_WORLD, status);
  }
  MPI_Finalize();
  return status;
}

}  // namespace iris
