# Shared by the Slurm test scripts: the local cluster started by the slurm_cluster fixture
# (tests/slurm/local_cluster.sh), and waiting for jobs.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1

use_cluster() {  # exits 77 (skip) with the reason when no cluster could be started here
  local dir=${IRIS_SLURM_DIR:-/tmp/iris-slurm}
  if [ ! -f "$dir/env" ]; then
    echo "SKIP: no local Slurm cluster in $dir: $(bash "$src/tests/slurm/local_cluster.sh" check || true)"
    exit 77
  fi
  . "$dir/env"
  scontrol ping >/dev/null || { echo "the local cluster in $dir does not answer"; exit 1; }
}

wait_job() {  # job id, timeout in seconds: waits until the job has left the queue, prints its final state
  local id=$1 t=$2 state
  for _ in $(seq "$t"); do
    state=$(scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    case $state in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) echo "$state"; return 0 ;;
    esac
    sleep 1
  done
  echo "job $id still $state after ${t}s" >&2
  scancel "$id" || true
  return 1
}
