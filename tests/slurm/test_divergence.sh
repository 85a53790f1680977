#!/usr/bin/env bash
# A diverging job on the local Slurm (4 CPU ranks, tp=2 pp=2, optim.lr 1e4) stops with iris-train's
# status 3: the job script says "diverged ... not requeued", the job ends FAILED with exit code 3 and no
# restart. A requeue anyway (by hand, or by an admin) does not loop: the restarted job resumes, diverges
# again, ends FAILED with 3, and stays ended (one restart in all, checked 15 s later).
set -uo pipefail
src=$1 build=$2
. "$src/tests/slurm/common.bash"
use_cluster
rm -rf runs ./*.log ./*.sbatch
fail=0
"$build/bin/iris-slurm" --task pretrain --model "$src/configs/models/tiny.json" --cpu-ranks 4 --layout 2,2 \
  --run-config "$src/configs/train/tiny-cpu.ini" --data "$build/data/sample_text" \
  --tokenizer "$build/data/tokenizer.model" --job-name iris-diverge --run-dir runs/diverge --time 00:10:00 \
  --train-arg=--train.seq_len=32 --train-arg=--train.micro_batch=2 --train-arg=--train.log_every=1000 \
  --train-arg=--train.steps=400 --train-arg=--optim.lr=1e4 --train-arg=--checkpoint.every=2 \
  --train-arg=--parallel.timeout_s=30 --output job.sbatch >/dev/null || { echo "FAIL: iris-slurm"; exit 1; }
field() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2; }
ended_diverged() {  # job id, restarts expected, what
  local id=$1 restarts=$2 what=$3 log=iris-diverge-$1.log
  local state; state=$(wait_job "$id" 240)
  local code; code=$(field "$id" ExitCode)
  if [ "$state" = FAILED ] && [ "$code" = 3:0 ] && [ "$(field "$id" Restarts)" = "$restarts" ] \
     && [ "$(grep -c 'training diverged at step' "$log")" -eq $((restarts + 1)) ] \
     && [ "$(grep -c 'training diverged (status 3); not requeued' "$log")" -eq $((restarts + 1)) ] \
     && ! grep -q "requeueing job" "$log"; then
    echo "ok   $what: job $id $state, ExitCode $code, Restarts $restarts: $(grep 'training diverged at step' "$log" | tail -1 | grep -oE 'training diverged at step [0-9]+: .{0,80}')"
  else
    echo "FAIL $what: job $id ended '$state' ExitCode '$code' Restarts '$(field "$id" Restarts)'"; cat "$log"; fail=1; return 1
  fi
}

id=$(RUN_DIR=runs/diverge sbatch --parsable job.sbatch)
ended_diverged "$id" 0 "diverged job" || exit 1

# Requeue it anyway; Slurm holds a requeued job ~2 minutes (BeginTime): release it at once.
scontrol requeue "$id" || { echo "FAIL: scontrol requeue $id refused"; exit 1; }
for _ in $(seq 50); do [ "$(field "$id" JobState)" = PENDING ] && break; sleep 0.2; done
for _ in $(seq 100); do pgrep -f "slurmstepd: \[$id\." >/dev/null || break; sleep 0.2; done
scontrol update JobId="$id" StartTime=now >/dev/null 2>&1
ended_diverged "$id" 1 "requeued diverged job" || exit 1
grep -q "resumed from runs/diverge/checkpoints/step_" "iris-diverge-$id.log" \
  || { echo "FAIL: the requeued job did not resume from the job's checkpoints"; fail=1; }
sleep 15
state=$(field "$id" JobState); restarts=$(field "$id" Restarts)
[ "$state" = FAILED ] && [ "$restarts" = 1 ] && echo "ok   no loop: 15 s later job $id is still $state after $restarts restart" \
  || { echo "FAIL: job $id is $state with $restarts restarts 15 s later (requeue loop?)"; fail=1; }
exit $fail
