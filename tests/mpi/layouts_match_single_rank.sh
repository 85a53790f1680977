#!/usr/bin/env bash
# Every layout equals one rank: for all eight (tp, pp, dp) in {1,2}^3 plus (1,4,2) and (2,1,4), ten
# optimizer steps of a tiny GQA model (tied and untied embeddings) give per-step losses within
# relative 1e-5 of the single-rank run (grad norms too) and final weights within relative 1e-4 (fp32), with
# global-norm clipping active on several steps (checked). The global batch
# (8 samples of 16 tokens) is the same in every layout: micro_batch 2 × grad_accum (4/dp) × dp.
# Extra iris-train flags after <source> <build> go to the layout runs only (not the reference), e.g.
# --train.recompute full to show a recomputing layout still equals the plain single-rank run.
set -euo pipefail
src=$1 build=$2
shift 2
extra=("$@")
source "$src/tests/mpi/common.bash"
fail=0
for tied in false true; do
  write_tiny_model "model_$tied.json" "$tied"
  equivalence_args "model_$tied.json"
  rm -rf "ref_$tied"
  "$build/bin/iris-train" "${common[@]}" --train.grad_accum 4 --output.dir "ref_$tied" > "ref_$tied.log" 2>&1
  expect_clipping "ref_$tied" 1.0 || { echo "FAIL: the reference run never clips; lower optim.grad_clip"; fail=1; }
  for layout in 1,1,1 2,1,1 1,2,1 1,1,2 2,2,1 2,1,2 1,2,2 2,2,2 1,4,2 2,1,4; do
    IFS=, read -r tp pp dp <<<"$layout"
    run_and_compare "ref_$tied" "run_${tied}_${tp}${pp}${dp}" "$tp" "$pp" "$dp" ${extra[@]+"${extra[@]}"} || fail=1
  done
done
exit $fail
