// Why a run stops early: SIGUSR1 (Slurm's warning before the time limit, forwarded by the job
// script) and SIGTERM (preemption, scancel) set a flag here; the trainer checks it at each step
// boundary and between micro-batches (Trainer::agree_to_stop), where all ranks agree, checkpoint and
// exit with kExitCheckpointedRequeue. The handler
// only stores the signal number (async-signal-safe); a second SIGTERM is not special: the job's
// KillWait ends the process with SIGKILL if the checkpoint does not finish in time.
#pragma once

namespace iris {

// Installs the handlers for SIGUSR1 and SIGTERM (idempotent).
void install_stop_signal_handlers();
// The number of the first stop signal received (0: none).
int stop_signal_received();

// The Slurm job's end as seconds since the epoch, from SLURM_JOB_END_TIME (set by Slurm 23.02+, and
// by Iris's job scripts on older Slurm); 0 when unknown.
double slurm_job_end_time();

}  // namespace iris
