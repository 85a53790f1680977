#!/usr/bin/env bash
# parallel.overlap_grad_reduce=true (ZeRO-1 buckets reduced to their owners during the last micro-batch's
# backward; on the CPU only when asked, auto leaves it off there) changes when the DP sums happen, not what
# they are: against the bucketed reduce-scatter after the backward (auto on the CPU), per-step losses, grad norms and final weights are BIT-EXACT at dp 2 (a sum
# of two floats does not depend on its order) — at tp 1 pp 1, at tp 2 (replicated norm weights), and at
# pp 2 with a tied embedding (whose all-reduce between the first and last stage must precede its DP
# reduction) — and within relative 1e-6 at dp 4 (MPI may add four values in another order), 10 steps,
# buckets of 0.01 MiB so every stage has several. Each overlapped run must really overlap: rank 0 logs
# how many of its buckets the first step issued during the backward, which must be more than none.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
fail=0
for tied in false true; do
  write_tiny_model "model_$tied.json" "$tied"
done
for layout in 1,1,2,false,0 2,1,2,false,0 1,2,2,true,0 1,1,4,true,1e-6; do
  IFS=, read -r tp pp dp tied tol <<<"$layout"
  equivalence_args "model_$tied.json"
  name="tp${tp}_pp${pp}_dp${dp}_$tied"
  args=("${common[@]}" --parallel.tp "$tp" --parallel.pp "$pp" --train.grad_accum $((4 / dp)))
  run_iris "${name}_after" $((tp * pp * dp)) "${args[@]}" || continue  # auto: no overlap on the CPU
  run_iris "${name}_overlap" $((tp * pp * dp)) "${args[@]}" --parallel.overlap_grad_reduce true || continue
  issued=$(buckets_issued_in_backward "${name}_overlap.log")
  echo "$name: $(grep -o "[0-9]* of [0-9]* buckets issued during the backward" "${name}_overlap.log" | head -n1)"
  [ -n "$issued" ] && [ "$issued" -gt 0 ] ||
    { echo "FAIL $name: no bucket went out during the backward"; grep -i "gradient" "${name}_overlap.log"; fail=1; }
  grep -q "gradient reduction: bucketed reduce-scatter" "${name}_after.log" ||
    { echo "FAIL $name: overlap_grad_reduce=auto did not select the reduce-scatter on the CPU"; fail=1; }
  "${IRIS_PYTHON:-/usr/bin/python3}" "$src/tests/mpi/compare_runs.py" "${name}_after" "${name}_overlap" "$tol" "$tol" ||
    { echo "FAIL $name: overlapped run differs beyond $tol"; fail=1; }
done
exit $fail
