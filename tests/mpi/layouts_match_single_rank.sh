#!/usr/bin/env bash
# Every layout equals one rank: for all eight (tp, pp, dp) in {1,2}^3 plus (1,4,2) and (2,1,4), ten
# optimizer steps of a tiny GQA model (tied and untied embeddings) give per-step losses within
# relative 1e-5 of the single-rank run (grad norms too) and final weights within relative 1e-4 (fp32), with
# global-norm clipping active on several steps (checked). The global batch
# (8 samples of 16 tokens) is the same in every layout: micro_batch 2 × grad_accum (4/dp) × dp.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
fail=0
for tied in false true; do
  write_tiny_model "model_$tied.json" "$tied"
  common=(--model.config "model_$tied.json" --data.path "$build/data/sample_text" --train.seq_len 16
          --train.micro_batch 2 --train.steps 10 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3
          --train.log_every 100 --output.save_weights true --parallel.bucket_mb 0.01 --optim.grad_clip 1.0)
  rm -rf "ref_$tied"
  "$build/bin/iris-train" "${common[@]}" --train.grad_accum 4 --output.dir "ref_$tied" > "ref_$tied.log" 2>&1
  expect_clipping "ref_$tied" 1.0 || { echo "FAIL: the reference run never clips; lower optim.grad_clip"; fail=1; }
  for layout in 1,1,1 2,1,1 1,2,1 1,1,2 2,2,1 2,1,2 1,2,2 2,2,2 1,4,2 2,1,4; do
    IFS=, read -r tp pp dp <<<"$layout"
    out="run_${tied}_${tp}${pp}${dp}"
    rm -rf "$out"
    if ! mpi $((tp * pp * dp)) "$build/bin/iris-train" "${common[@]}" --parallel.tp "$tp" --parallel.pp "$pp" \
         --train.grad_accum $((4 / dp)) --output.dir "$out" > "$out.log" 2>&1; then
      echo "FAIL tied=$tied tp=$tp pp=$pp dp=$dp: run failed"; tail -20 "$out.log"; fail=1; continue
    fi
    /usr/bin/python3 "$src/tests/mpi/compare_runs.py" "ref_$tied" "$out" 1e-5 1e-4 || { echo "FAIL tied=$tied layout $layout"; fail=1; }
  done
done
exit $fail
