#!/usr/bin/env bash
# kill -9 during checkpoint saves, at 2 ranks (tp=2), in a seeded loop of tries: a run that saves every
# step (a ~10 MB checkpoint, so most of its time is spent saving) is killed after a random delay: rank 0,
# rank 1 and all ranks in turn. Each time the job ends within its bound
# (no hang: the surviving rank is ended by mpirun), `latest` names a checkpoint that verifies, and the next
# try resumes from exactly that step (taking over the killed run's lock). Seed: IRIS_FAULT_SEED (default
# 19); the tries, victims and delays are printed. Bound: 60 s per run; the script takes about 60 s.
set -uo pipefail
src=$1 build=$2
source "$src/tests/faults/common.bash"
export BOUND=60
write_big_model model.json
rm -rf ck out_* ./*.log
seed=${IRIS_FAULT_SEED:-19}
RANDOM=$seed
tries=6
rank_pids() { pgrep -f "^$build/bin/iris-train .*--output.dir $1( |\$)"; }
rank_of() { tr '\0' '\n' </proc/$1/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'; }
echo "seed $seed, $tries tries"
resumed_step=0
for try in $(seq $tries); do
  out=out_$try
  iris 2 --parallel.tp 2 --train.steps 100000 --checkpoint.dir ck --checkpoint.every 1 --checkpoint.keep 2 \
    --checkpoint.load auto --output.dir $out >$try.log 2>&1 &
  job=$!
  # Wait for this try's first own save (a fresh checkpoint after the resume), then a random 0-1.5 s.
  for _ in $(seq 300); do grep -q "checkpoint ck/step_" $try.log 2>/dev/null && break; sleep 0.1; done
  delay=$(( RANDOM % 16 ))  # tenths of a second
  sleep "$(( delay / 10 )).$(( delay % 10 ))"
  pids=$(rank_pids $out)
  case $(( try % 3 )) in
    0) victim="all ranks"; kill -9 $pids ;;
    *) pick=$(( try % 3 - 1 )); victim="rank $pick"
       for p in $pids; do [ "$(rank_of $p)" = $pick ] && kill -9 $p; done ;;
  esac
  wait $job
  rc=$?
  if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
    echo "FAIL try $try ($victim): exit status $rc$([ $rc -eq 124 ] && echo ' (hung until the timeout)')"
    tail -5 $try.log; fail=1; kill -9 $(rank_pids $out) 2>/dev/null
  fi
  if [ -n "$(rank_pids $out)" ]; then echo "FAIL try $try: ranks survive the job"; fail=1; kill -9 $(rank_pids $out); fi
  if [ "$try" -gt 1 ] && ! grep -q "resumed from ck/step_$(printf '%08d' $resumed_step) at step $resumed_step" $try.log; then
    echo "FAIL try $try: did not resume from step $resumed_step"; grep -m1 resumed $try.log; fail=1
  fi
  latest=$(cat ck/latest 2>/dev/null)
  if [ -z "$latest" ] || ! "$build/bin/iris-convert" verify --checkpoint ck >verify_$try.log 2>&1; then
    echo "FAIL try $try ($victim): latest '$latest' does not verify"; cat verify_$try.log; fail=1; break
  fi
  resumed_step=$((10#${latest#step_}))
  echo "ok   try $try: kill -9 of $victim ~$((delay / 10)).$((delay % 10)) s into the saves: exit $rc, $latest verifies"
done
# The last kill left a checkpoint a fresh run finishes from.
iris 2 --parallel.tp 2 --train.steps $((resumed_step + 1)) --checkpoint.dir ck --checkpoint.load auto --output.dir out_end \
  >end.log 2>&1 && grep -q "resumed from ck/step_$(printf '%08d' $resumed_step)" end.log \
  && echo "ok   after $tries kills: resumed from step $resumed_step and finished" \
  || { echo "FAIL: the final resume from step $resumed_step"; tail -5 end.log; fail=1; }
exit $fail
