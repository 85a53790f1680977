#!/usr/bin/env bash
# No hang: a rank that throws or exits in the middle of training makes the whole 4-rank job exit
# non-zero within 60 s (the bound checked here; the job itself ends in a few seconds), with a message
# naming the failed rank. An invalid layout is rejected before any work starts (no output written).
set -uo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
common=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2
        --train.grad_accum 2 --train.steps 50 --parallel.tp 2 --parallel.pp 2)
fail=0
for mode in throw exit; do
  rm -rf "out_$mode"
  start=$(date +%s)
  IRIS_FAULT="2:3:$mode" timeout 60 mpirun --oversubscribe -np 4 "$build/bin/iris-train" "${common[@]}" \
    --output.dir "out_$mode" > "$mode.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then echo "FAIL $mode: exit status $rc (124 = hung until the timeout)"; fail=1; continue; fi
  # Iris names the rank when it can ("[rank 2] ... rank 2 failed"); a process that vanished is named by
  # mpirun as "Process name: [[JOB,1],2]" (the MPI rank is the last number).
  named='\[rank 2\].*failed|Process name: \[\[[0-9]+,[0-9]+\],2\]'
  if ! grep -qE "$named" "$mode.log"; then echo "FAIL $mode: no message naming rank 2"; cat "$mode.log"; fail=1; continue; fi
  echo "ok   $mode: exit $rc after ${took}s: $(grep -m1 -E "$named" "$mode.log")"
done
rm -rf out_invalid
timeout 60 mpirun --oversubscribe -np 3 "$build/bin/iris-train" "${common[@]}" --output.dir out_invalid > invalid.log 2>&1
rc=$?
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -q "multiple of parallel.tp" invalid.log || [ -e out_invalid ]; then
  echo "FAIL invalid layout (exit $rc)"; cat invalid.log; fail=1
else
  echo "ok   invalid layout: $(grep -m1 'multiple of parallel.tp' invalid.log)"
fi
exit $fail
