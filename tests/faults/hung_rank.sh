#!/usr/bin/env bash
# SIGSTOP of one rank while a 2-rank run (tp=2) saves every step, under parallel.timeout_s 5: the other
# rank times out in its next collective, names the stopped rank as not answering, and the job ends
# non-zero within 40 s of the stop; `latest` names a checkpoint that verifies and a new run resumes from
# it. (tests/mpi/stop_signals.sh stops a rank of a 4-rank run between saves.) Bound: 60 s per run; the
# script takes about 25 s.
set -uo pipefail
src=$1 build=$2
source "$src/tests/faults/common.bash"
export BOUND=60
write_big_model model.json
rm -rf ck out_* ./*.log
rank_pids() { pgrep -f "^$build/bin/iris-train .*--output.dir $1( |\$)"; }
rank_of() { tr '\0' '\n' </proc/$1/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'; }

iris 2 --parallel.tp 2 --train.steps 100000 --checkpoint.dir ck --checkpoint.every 1 --checkpoint.keep 2 \
  --parallel.timeout_s 5 --output.dir out_hung >hung.log 2>&1 &
job=$!
for _ in $(seq 300); do grep -q "checkpoint ck/step_00000002" hung.log 2>/dev/null && break; sleep 0.1; done
for p in $(rank_pids out_hung); do [ "$(rank_of "$p")" = 1 ] && victim=$p; done
[ -n "${victim:-}" ] || { echo "FAIL: no rank 1 to stop"; tail hung.log; exit 1; }
kill -STOP "$victim"
stopped=$(date +%s)
for _ in $(seq 40); do kill -0 $job 2>/dev/null || break; sleep 1; done
if kill -0 $job 2>/dev/null; then
  echo "FAIL: the job still runs 40 s after rank 1 was stopped"; fail=1
  kill -9 $(rank_pids out_hung) 2>/dev/null
fi
kill -CONT "$victim" 2>/dev/null; kill -9 "$victim" 2>/dev/null
wait $job
rc=$?
took=$(( $(date +%s) - stopped ))
if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then echo "FAIL hung rank: exit status $rc"; tail -10 hung.log; fail=1
elif ! grep -qE "did not answer at all: .*rank 1\b" hung.log; then
  echo "FAIL hung rank: no message naming rank 1 as not answering"; tail -20 hung.log; fail=1
else
  echo "ok   hung rank 1 during saves: job ended with status $rc ${took}s after the stop: $(grep -m1 -oE 'did not answer at all: .{0,60}' hung.log)"
fi
"$build/bin/iris-convert" verify --checkpoint ck >verify.log 2>&1 && echo "ok   ck/$(cat ck/latest) verifies" \
  || { echo "FAIL: latest does not verify"; cat verify.log; fail=1; }
step=$((10#$(sed 's/step_//' ck/latest)))
expect_resume "resume after the hung rank" 2 ck/step_$(printf '%08d' $step) $step --parallel.tp 2 \
  --train.steps $((step + 1)) --output.dir out_resume
exit $fail
