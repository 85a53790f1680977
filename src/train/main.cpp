// iris-train: the MPI-launched trainer. `mpirun -np N iris-train --config FILE [--section.key=value ...]`;
// a single rank also runs without mpirun. Exit status (src/core/exit_codes.h): 0 done, 2 bad input,
// 1 internal failure, 3 diverged (too many non-finite steps), 42 stopped early by a signal or the time
// limit after saving a checkpoint.
#include <mpi.h>

#include <cstdio>

#include "src/core/error.h"
#include "src/core/log.h"
#include "src/core/exit_codes.h"
#include "src/core/tool_main.h"
#include "src/train/trainer.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  iris::init_logging(rank, world);
  const int status = iris::run_tool("iris-train", [&] {
    iris::RunConfig config;
    std::string help;
    if (!iris::RunConfig::parse(argc, argv, config, &help)) {
      if (rank == 0) std::printf("%s\n", help.c_str());
      return iris::kExitOk;
    }
    iris::Trainer trainer(std::move(config), world, rank);
    trainer.run();
    return trainer.exit_status();
  });
  // One failed rank must end the whole job rather than leave the others waiting in a collective. A
  // stop after a checkpoint or on divergence is agreed by every rank: they all leave normally with that
  // status.
  const bool agreed = status == iris::kExitCheckpointedRequeue || status == iris::kExitDiverged;
  if (status != 0 && !agreed && world > 1) {
    spdlog::error("rank {} failed (exit status {}); ending every rank of the job", rank, status);
    MPI_Abort(MPI_COMM_WORLD, status);
  }
  MPI_Finalize();
  return status;
}
