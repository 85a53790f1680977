#!/usr/bin/env bash
# Installs a single-node Slurm (Debian/Ubuntu packages slurm-wlm + munge) for the Slurm tests
# (tests/slurm, label slurm). Kept apart from tools/setup.sh so that plain users do not get Slurm.
# Needs root (or sudo). Does nothing when slurmctld, slurmd, sbatch and munged are already there.
set -euo pipefail
have_all() { for c in slurmctld slurmd sbatch scontrol munged; do command -v "$c" >/dev/null || return 1; done; }
if have_all; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-slurm: need root or sudo to install slurm-wlm and munge" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
# slurm-wlm pulls in slurmctld, slurmd, the client commands and the PMIx plugin (srun --mpi=pmix).
$sudo apt-get install -y --no-install-recommends slurm-wlm munge
have_all || { echo "setup-slurm: slurm-wlm installed but a daemon or command is still missing" >&2; exit 1; }
