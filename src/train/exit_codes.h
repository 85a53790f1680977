// Exit statuses of iris-train that job scripts act on. This header is the one place they are
// defined: jobs/slurm templates get the values filled in by iris-slurm from here.
#pragma once

namespace iris {

inline constexpr int kExitOk = 0;
// Internal failure (a bug, a failed collective, a dead rank): do not requeue.
inline constexpr int kExitFailure = 1;
// Bad input (config, data, flags): requeueing would fail the same way.
inline constexpr int kExitUserError = 2;
// "Checkpointed, please requeue": a signal (SIGUSR1/SIGTERM) or the time limit stopped training
// after a checkpoint was written; the job script runs `scontrol requeue $SLURM_JOB_ID`.
inline constexpr int kExitCheckpointedRequeue = 42;

}  // namespace iris
