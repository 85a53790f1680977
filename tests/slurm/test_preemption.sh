#!/usr/bin/env bash
# Jobs that survive the cluster, on the local Slurm, one tiny-model CPU job of 4 ranks (tp=2 pp=2) at a time:
#  1. USR1 to the batch shell (`scancel --signal=USR1 --batch`, as Slurm's --signal=B:USR1 does): the
#     shell forwards it to every rank, they checkpoint, the job requeues itself, resumes and finishes
#     with final weights and losses bit-identical to an uninterrupted job's.
#  2. SIGTERM to every rank (`scancel --signal=TERM`: every process of the job steps, as preemption
#     does): the same. (With --full srun gets it too and ends the step at once; see the README.)
#  3. A 1-minute time limit with no signal at all (--signal-lead 0): the trainer stops before the end
#     from SLURM_JOB_END_TIME, checkpoints, the job requeues and the next start resumes from it.
#  4. kill -9 of one rank: the job ends FAILED within the timeout, the log names the task, no requeue.
# Slurm holds a requeued job for 2 minutes (BeginTime); the test releases it at once with
# `scontrol update StartTime=now`, which changes only when it starts.
set -uo pipefail
src=$1 build=$2
. "$src/tests/slurm/common.bash"
use_cluster
rm -rf runs ./*.log ./*.sbatch
fail=0

generate() {  # script, extra iris-slurm args...
  local out=$1; shift
  "$build/bin/iris-slurm" --task pretrain --model "$src/configs/models/tiny.json" --cpu-ranks 4 --layout 2,2 \
    --run-config "$src/configs/train/tiny-cpu.ini" --data "$build/data/sample_text" \
    --tokenizer "$build/data/tokenizer.model" --job-name iris-preempt --run-dir runs/unused \
    --train-arg=--train.seq_len=32 --train-arg=--train.micro_batch=2 --train-arg=--train.log_every=1000 \
    --train-arg=--output.save_weights=true --train-arg=--parallel.timeout_s=30 "$@" --output "$out" >/dev/null
}
state_of() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
lines() { cat "$1" 2>/dev/null | wc -l; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }  # file, count
wait_for() {  # seconds, command...: polls every 0.2 s until the command succeeds
  local t=$1; shift
  for _ in $(seq $((t * 5))); do "$@" && return 0; sleep 0.2; done
  return 1
}
requeued_and_released() {  # job id, seconds: waits until the job waits to be restarted, then releases it
  local id=$1 t=$2
  for _ in $(seq $((t * 5))); do
    case $(state_of "$id") in
      PENDING)
        if grep -q "requeueing job" "iris-preempt-$id.log" 2>/dev/null; then
          # Release it only once the old job step is gone (its PMIx socket is reused by the next start).
          for _ in $(seq 100); do pgrep -f "slurmstepd: \[$id\." >/dev/null || break; sleep 0.2; done
          sleep 1
          scontrol update JobId="$id" StartTime=now >/dev/null 2>&1
          return 0
        fi ;;
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 1 ;;
    esac
    sleep 0.2
  done
  return 1
}
rank_pids() { pgrep -f "^$build/bin/iris-train .*--output.dir runs/$1( |\$)"; }

generate job.sbatch --time 00:10:00 --train-arg=--train.steps=400

# The reference: the same job, never interrupted.
id=$(RUN_DIR=runs/straight sbatch --parsable job.sbatch)
[ "$(wait_job "$id" 240)" = COMPLETED ] || { echo "FAIL: the uninterrupted job $id did not complete"; cat "iris-preempt-$id.log"; exit 1; }
echo "ok   uninterrupted job $id: $(lines runs/straight/metrics.jsonl) steps"

for how in usr1 term; do
  id=$(RUN_DIR=runs/$how sbatch --parsable job.sbatch)
  if ! wait_for 120 has_lines runs/$how/metrics.jsonl 5; then
    echo "FAIL $how: job $id never reached step 5 ($(state_of "$id"))"; cat "iris-preempt-$id.log"; fail=1; scancel "$id"; continue
  fi
  if [ $how = usr1 ]; then scancel --signal=USR1 --batch "$id"; else scancel --signal=TERM "$id"; fi
  requeued_and_released "$id" 120 || { echo "FAIL $how: job $id was not requeued"; cat "iris-preempt-$id.log"; fail=1; scancel "$id"; continue; }
  state=$(wait_job "$id" 240)
  log=iris-preempt-$id.log
  if [ "$state" != COMPLETED ]; then echo "FAIL $how: job $id ended $state"; cat "$log"; fail=1; continue; fi
  stop=$(grep -o 'stopped at step [0-9]* of 400 on SIG[A-Z0-9]*' "$log" | head -1)
  if [ -z "$stop" ] || ! grep -q "restart 1" "$log" || ! grep -q "resumed from runs/$how/checkpoints/step_" "$log"; then
    echo "FAIL $how: expected a stop, a restart and a resume in the log"; cat "$log"; fail=1; continue
  fi
  /usr/bin/python3 "$src/tests/mpi/compare_runs.py" runs/straight runs/$how 0 0 \
    || { echo "FAIL $how: the resumed job differs from the uninterrupted one"; fail=1; continue; }
  echo "ok   $how: job $id $stop, requeued, resumed, completed; losses and weights bit-identical"
done

# 3. The time limit alone: 1 minute, no signal; the trainer leaves 20 s for the checkpoint and exit.
generate short.sbatch --time 00:01:00 --signal-lead 0 --train-arg=--train.steps=100000 --train-arg=--train.exit_margin_s=20
grep -q -- '^#SBATCH --signal' short.sbatch && { echo "FAIL: --signal-lead 0 still wrote a --signal line"; fail=1; }
id=$(RUN_DIR=runs/timelimit sbatch --parsable short.sbatch)
log=iris-preempt-$id.log
if requeued_and_released "$id" 150 && wait_for 90 grep -q "resumed from runs/timelimit/checkpoints/step_" "$log"; then
  echo "ok   time limit: job $id $(grep -o 'stopped at step [0-9]* of 100000 on the time limit' "$log"), requeued, $(grep -o 'resumed from [^ ]* at step [0-9]*' "$log")"
else
  echo "FAIL time limit: job $id did not stop, requeue and resume by itself ($(state_of "$id"))"; cat "$log"; fail=1
fi
scancel "$id"; wait_job "$id" 60 >/dev/null

# 4. A dead rank.
id=$(RUN_DIR=runs/dead sbatch --parsable short.sbatch)
log=iris-preempt-$id.log
if wait_for 120 has_lines runs/dead/metrics.jsonl 3; then
  victim=$(rank_pids dead | tail -1)
  victim_rank=$(tr '\0' '\n' </proc/"$victim"/environ | sed -n 's/^SLURM_PROCID=//p')
  kill -KILL "$victim"; killed=$(date +%s)
  state=$(wait_job "$id" 60); took=$(( $(date +%s) - killed ))
  if [ "$state" = FAILED ] && grep -qE "task $victim_rank: Killed|rank $victim_rank\b" "$log" && ! grep -q "requeueing" "$log"; then
    echo "ok   dead rank $victim_rank: job $id ended $state ${took}s later: $(grep -m1 -E "task $victim_rank: Killed|rank $victim_rank\b" "$log")"
  else
    echo "FAIL dead rank: job $id ended '$state' ${took}s after rank $victim_rank was killed"; cat "$log"; fail=1
  fi
else
  echo "FAIL dead rank: job $id never reached step 3"; cat "$log"; fail=1
fi
scancel "$id" 2>/dev/null
exit $fail
