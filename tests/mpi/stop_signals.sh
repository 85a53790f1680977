#!/usr/bin/env bash
# Stopping early, 4 ranks at (tp,pp,dp) = (2,1,2):
#  - SIGUSR1 sent to ONE rank mid-run: every rank agrees at the next step boundary, a checkpoint is
#    written, the job exits with status 42 (no MPI_Abort); `--checkpoint.load latest` then finishes the
#    run with losses and final weights bit-identical to an uninterrupted run (tolerance 0).
#  - SIGTERM sent to every rank (as Slurm's preemption does): the same, bit-identical after resume.
#  - SIGUSR1 raised on one rank in the middle of a step (8 micro-batches, pp = 2 × dp = 2): the ranks
#    agree between micro-batches, drop the step and save the previous one; resumed, bit-identical. The
#    same during an evaluation: the evaluation is dropped, the step before it is saved.
#  - train.time_limit too short for the steps: checkpoint and status 42 without any signal.
#  - A hung rank (SIGSTOP) with parallel.timeout_s = 5: the job ends non-zero within 60 s with a message
#    naming the operation, the group and the stopped rank as missing.
set -uo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
common=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2
        --train.grad_accum 2 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3
        --train.log_every 1000 --output.save_weights true --parallel.tp 2 --parallel.pp 1)
rm -rf straight run_* ckpt_* tail mid_* ./*.log
fail=0
rank_pids() { pgrep -f "^$build/bin/iris-train .*--output.dir $1( |\$)"; }
wait_for_steps() {  # output dir, steps, pid of mpirun: waits until metrics.jsonl has that many lines
  for _ in $(seq 600); do
    [ "$(cat "$1/metrics.jsonl" 2>/dev/null | wc -l)" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

mpi 4 "$build/bin/iris-train" "${common[@]}" --train.steps 150 --output.dir straight >straight.log 2>&1 || { echo "FAIL straight run"; tail straight.log; exit 1; }

for sig in USR1 TERM; do
  run=run_$sig ck=ckpt_$sig
  mpi 4 "$build/bin/iris-train" "${common[@]}" --train.steps 150 --output.dir $run --checkpoint.dir $ck >$run.log 2>&1 &
  launcher=$!
  if ! wait_for_steps $run 5 $launcher; then echo "FAIL $sig: the run ended before step 5"; fail=1; wait $launcher; continue; fi
  pids=$(rank_pids $run)
  if [ $sig = USR1 ]; then kill -USR1 $(echo "$pids" | tail -1); else kill -TERM $pids; fi
  wait $launcher
  status=$?
  step=$(wc -l <$run/metrics.jsonl)
  if [ $status -ne 42 ]; then echo "FAIL $sig: exit status $status, expected 42"; tail -5 $run.log; fail=1; continue; fi
  if [ "$step" -ge 150 ]; then echo "FAIL $sig: the run did not stop early"; fail=1; continue; fi
  [ "$(cat $ck/latest)" = "$(printf 'step_%08d' "$step")" ] || { echo "FAIL $sig: latest is $(cat $ck/latest), the run stopped after step $step"; fail=1; continue; }
  grep -q "stopped at step $step of 150 on SIG$sig" $run.log || { echo "FAIL $sig: no stop message"; fail=1; }
  grep -q "MPI_ABORT" $run.log && { echo "FAIL $sig: a rank aborted"; fail=1; }
  mpi 4 "$build/bin/iris-train" "${common[@]}" --train.steps 150 --output.dir $run --checkpoint.dir $ck --checkpoint.load latest \
    >${run}_resumed.log 2>&1 || { echo "FAIL $sig: resume failed"; tail ${run}_resumed.log; fail=1; continue; }
  # The resumed run keeps the first run's lines in metrics.jsonl: the whole history, compared at tolerance 0.
  /usr/bin/python3 "$src/tests/mpi/compare_runs.py" straight $run 0 0 || { echo "FAIL $sig: not bit-exact"; fail=1; continue; }
  echo "ok   SIG$sig: stopped after step $step with status 42, resumed, bit-identical to the straight run"
done

# Mid-step: IRIS_TEST_SIGNAL=RANK:STEP:MB[:eval] raises SIGUSR1 on that rank when it takes that
# micro-batch. Rank 3 is the last stage of DP replica 1.
mid=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 1
     --train.grad_accum 8 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3 --train.log_every 1000
     --output.save_weights true --parallel.tp 1 --parallel.pp 2 --train.steps 8)
mpi 4 "$build/bin/iris-train" "${mid[@]}" --output.dir mid_straight >mid_straight.log 2>&1 || { echo "FAIL mid-step straight run"; tail mid_straight.log; exit 1; }
IRIS_TEST_SIGNAL=3:5:2 mpi 4 "$build/bin/iris-train" "${mid[@]}" --output.dir mid_run --checkpoint.dir mid_ck >mid_run.log 2>&1
status=$?
dropped=$(grep -o "dropped step 5 after [0-9] of 8 micro-batches" mid_run.log)
if [ $status -ne 42 ]; then echo "FAIL mid-step: exit status $status, expected 42"; tail -5 mid_run.log; fail=1
elif [ -z "$dropped" ] || ! grep -q "stopped at step 4 of 8 on SIGUSR1" mid_run.log; then
  echo "FAIL mid-step: no message of step 5 dropped and step 4 saved"; grep -E "stopped|warn" mid_run.log; fail=1
elif [ "$(cat mid_ck/latest)" != step_00000004 ] || [ "$(wc -l <mid_run/metrics.jsonl)" -ne 4 ]; then
  echo "FAIL mid-step: latest $(cat mid_ck/latest), $(wc -l <mid_run/metrics.jsonl) metrics lines (expected step 4)"; fail=1
elif ! mpi 4 "$build/bin/iris-train" "${mid[@]}" --output.dir mid_run --checkpoint.dir mid_ck --checkpoint.load latest \
       >mid_resumed.log 2>&1; then
  echo "FAIL mid-step: resume failed"; tail mid_resumed.log; fail=1
elif ! /usr/bin/python3 "$src/tests/mpi/compare_runs.py" mid_straight mid_run 0 0; then
  echo "FAIL mid-step: not bit-exact after the resume"; fail=1
else
  echo "ok   mid-step SIGUSR1: $dropped, step 4 saved, status 42; resumed bit-identical to the straight run"
fi
# During the evaluation after step 4 (eval.every 2, 2 batches = 16 micro-batches per DP rank here).
IRIS_TEST_SIGNAL=0:4:3:eval mpi 4 "$build/bin/iris-train" "${mid[@]}" --output.dir mid_eval --checkpoint.dir mid_eval_ck \
  --data.split 90,10 --eval.every 2 --eval.batches 2 >mid_eval.log 2>&1
status=$?
dropped=$(grep -o "dropped the evaluation after step 4 after [0-9]* of 16 micro-batches" mid_eval.log)
if [ $status -eq 42 ] && [ -n "$dropped" ] && [ "$(cat mid_eval_ck/latest)" = step_00000004 ] &&
   grep -q '"val_loss"' <(sed -n 2p mid_eval/metrics.jsonl) && ! grep -q '"val_loss"' <(sed -n 4p mid_eval/metrics.jsonl); then
  echo "ok   SIGUSR1 during an evaluation: $dropped, step 4 saved (without val_loss), status 42"
else
  echo "FAIL SIGUSR1 during an evaluation: status $status, latest $(cat mid_eval_ck/latest 2>/dev/null)"; grep -E "stopped|error" mid_eval.log; cat mid_eval/metrics.jsonl; fail=1
fi

# Time limit, no signal: 2 s of budget with a 1 s margin, far too short for 100,000 steps.
mpi 4 "$build/bin/iris-train" "${common[@]}" --train.steps 100000 --output.dir run_time \
  --checkpoint.dir ckpt_time --train.time_limit 2s --train.exit_margin_s 1 >run_time.log 2>&1
status=$?
if [ $status -eq 42 ] && grep -qE "on the time limit( \(dropped [^)]*\))?: checkpoint saved" run_time.log && [ -f ckpt_time/latest ]; then
  echo "ok   time limit: $(grep -o 'stopped at step [0-9]* of 100000 on the time limit' run_time.log), status 42, $(cat ckpt_time/latest)"
else
  echo "FAIL time limit: status $status"; tail -5 run_time.log; fail=1
fi

# A hung rank: SIGSTOP one rank; the others time out in their next collective or receive.
mpi 4 "$build/bin/iris-train" "${common[@]}" --train.steps 100000 --output.dir run_hung --parallel.timeout_s 5 \
  >run_hung.log 2>&1 &
launcher=$!
start=$(date +%s)
if wait_for_steps run_hung 3 $launcher; then
  victim=$(rank_pids run_hung | tail -1)
  victim_rank=$(tr '\0' '\n' </proc/$victim/environ | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
  kill -STOP "$victim"
  stopped=$(date +%s)
  for _ in $(seq 60); do kill -0 $launcher 2>/dev/null || break; sleep 1; done
  if kill -0 $launcher 2>/dev/null; then
    echo "FAIL hung rank: the job still runs 60 s after rank $victim_rank was stopped"; fail=1
    kill -KILL $(rank_pids run_hung) 2>/dev/null; kill -CONT "$victim" 2>/dev/null
  fi
  wait $launcher
  status=$?
  took=$(( $(date +%s) - stopped ))
  if [ $status -eq 0 ]; then echo "FAIL hung rank: exit status 0"; fail=1
  elif ! grep -qE "did not answer at all: .*rank $victim_rank\b" run_hung.log; then
    echo "FAIL hung rank: no message naming rank $victim_rank as missing"; tail -20 run_hung.log; fail=1
  else
    echo "ok   hung rank $victim_rank: job ended with status $status ${took}s after the stop"
    grep -E "has not completed|still missing" run_hung.log | head -2
  fi
  kill -KILL "$victim" 2>/dev/null
else
  echo "FAIL hung rank: the run ended before step 3"; tail run_hung.log; fail=1
fi
exit $fail
