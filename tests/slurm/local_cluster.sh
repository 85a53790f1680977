#!/usr/bin/env bash
# A real single-node Slurm for the tests: munged, slurmctld and slurmd started directly (no systemd),
# with the CPUs and memory of this machine (as `slurmd -C` reports them), every file in one state
# directory. Needs root (the daemons run as root) and the Debian packages from tools/setup-slurm.sh.
#
#   tests/slurm/local_cluster.sh start [DIR]   start, wait until the node is idle; prints the line to
#                                               source: `. DIR/env` (exports SLURM_CONF)
#   tests/slurm/local_cluster.sh stop  [DIR]   cancel jobs, stop the daemons it started, remove DIR
#   tests/slurm/local_cluster.sh check         exit 0 if a cluster can be started here, else 77 and why
#
# DIR defaults to $IRIS_SLURM_DIR or /tmp/iris-slurm. Ports: $IRIS_SLURM_PORT (slurmctld, default
# 16817) and the next one (slurmd). One cluster per DIR and port pair.
set -euo pipefail
cmd=${1:-}
dir=$(realpath -m "${2:-${IRIS_SLURM_DIR:-/tmp/iris-slurm}}")
port=${IRIS_SLURM_PORT:-16817}

check() {
  local c
  for c in munged slurmctld slurmd sbatch scontrol; do
    command -v "$c" >/dev/null || { echo "local_cluster: $c not installed (run tools/setup-slurm.sh)"; return 77; }
  done
  [ "$(id -u)" -eq 0 ] || { echo "local_cluster: the daemons must run as root here (SlurmdUser=root)"; return 77; }
}

wait_for() {  # seconds, description, command...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "local_cluster: timed out after ${t}s waiting for $what" >&2
  return 1
}

start() {
  check || exit $?
  if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    echo "local_cluster: already running in $dir"; exit 0
  fi
  rm -rf "$dir"
  mkdir -p "$dir"/{state,spool,munge,log}
  chmod 700 "$dir/munge"
  # munged: its own key and socket, so the system munge (if any) is left alone.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
  wait_for 10 munged test -S "$dir/munge/munge.sock"

  local host node
  host=$(hostname -s)
  # "NodeName=host CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=.."
  node=$(slurmd -C | head -1)
  [[ $node == NodeName=* ]] || { echo "local_cluster: slurmd -C gave no node line: $node" >&2; exit 1; }
  cat >"$dir/slurm.conf" <<CONF
# Written by tests/slurm/local_cluster.sh: a one-node test cluster, state in $dir.
ClusterName=iris-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in a container: track processes through their parent chain, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
GresTypes=gpu
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
# Never started, never run on: nodes of the shape of a GPU cluster (8 GPUs, 64 cores), so that the
# generated GPU job scripts can be checked with \`sbatch --test-only --partition=gpu\`.
NodeName=gpu[1-4] NodeAddr=127.0.0.254 CPUs=64 RealMemory=1000000 Gres=gpu:8 State=DOWN
PartitionName=gpu Nodes=gpu[1-4] Default=NO MaxTime=INFINITE State=UP
CONF
  echo "NodeName=gpu[1-4] Name=gpu Count=8" >"$dir/gres.conf"
  echo "export SLURM_CONF=$dir/slurm.conf" >"$dir/env"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -i
  wait_for 20 slurmctld scontrol ping
  slurmd -N "$host"
  if ! wait_for 30 "node $host to become idle" bash -c "sinfo -h -n '$host' -o %t | grep -qx idle"; then
    sinfo -N -l >&2 || true
    tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop_daemons; exit 1
  fi
  echo "local_cluster: running in $dir ($node); use: . $dir/env"
}

stop_pid_file() {  # pid file: TERM, wait up to 15 s, then KILL
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_daemons() {
  if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid" ]; then
    SLURM_CONF=$dir/slurm.conf scancel --full --signal=KILL --user=root >/dev/null 2>&1 || true
    SLURM_CONF=$dir/slurm.conf scancel --user=root >/dev/null 2>&1 || true
  fi
  # Job steps (slurmstepd) of this cluster: their command line names this cluster's spool directory.
  local pid
  for pid in $(pgrep -f "slurmstepd.*" || true); do
    grep -qa "$dir" "/proc/$pid/environ" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  stop_pid_file "$dir/slurmd.pid"
  stop_pid_file "$dir/slurmctld.pid"
  stop_pid_file "$dir/munge/munged.pid"
}

case $cmd in
  start) start ;;
  stop) stop_daemons; rm -rf "$dir"; echo "local_cluster: stopped, $dir removed" ;;
  check) check ;;
  *) echo "usage: $0 start|stop|check [DIR]" >&2; exit 2 ;;
esac
