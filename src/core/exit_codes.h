// Exit statuses of every Iris program that job scripts act on (iris-train uses them all). This header is
// the one place they are defined: jobs/slurm templates get the values filled in by iris-slurm from here.
#pragma once

namespace iris {

inline constexpr int kExitOk = 0;
// Internal failure (a bug, a failed collective, a dead rank): do not requeue.
inline constexpr int kExitFailure = 1;
// Bad input (config, data, flags): requeueing would fail the same way.
inline constexpr int kExitUserError = 2;
// Diverged: too many non-finite steps (train.max_consecutive_skipped, train.max_skipped_fraction); every
// rank stops together without saving. A requeue would diverge again: resume by hand with a lower LR.
inline constexpr int kExitDiverged = 3;
// "Checkpointed, please requeue": a signal (SIGUSR1/SIGTERM) or the time limit stopped training
// after a checkpoint was written; the job script runs `scontrol requeue $SLURM_JOB_ID`.
inline constexpr int kExitCheckpointedRequeue = 42;

}  // namespace iris
