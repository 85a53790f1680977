// iris-train: the MPI-launched trainer. `mpirun -np N iris-train --config FILE [--section.key=value ...]`;
// a single rank also runs without mpirun. Exit status (src/core/exit_codes.h): 0 done, 2 bad input,
// 1 internal failure, 3 diverged (too many non-finite steps), 42 stopped early by a signal or the time
// limit after saving a checkpoint.
#include <mpi.h>

#include <cstdio>

#include "parallel/mpi_tool_main.h"
#include "src/core/error.h"
#include "src/core/log.h"
#include "src/core/exit_codes.h"
#include "src/core/tool_main.h"
#include "src/train/trainer.h"

int main(int argc, char** argv) {
  // A stop after a checkpoint or on divergence is agreed by every rank: they all leave with that status.
  return iris::run_mpi_tool(
      "iris-train", argc, argv,
      [&](int rank, int world) {
        iris::RunConfig config;
        std::string help;
        if (!iris::RunConfig::parse(argc, argv, config, &help)) {
          if (rank == 0) std::printf("%s\n", help.c_str());
          return iris::kExitOk;
        }
        iris::Trainer trainer(std::move(config), world, rank);
        trainer.run();
        return trainer.exit_status();
      },
      {iris::kExitCheckpointedRequeue, iris::kExitDiverged});
}
