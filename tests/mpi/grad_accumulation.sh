#!/usr/bin/env bash
# Gradient accumulation: 4 micro-batches of 1 give the same update as 1 micro-batch of 4 (losses within
# relative 1e-5 and weights within relative 1e-4 after 5 steps, fp32: summation order differs); also under pp=2 (the 1F1B
# schedule with 4 micro-batches in flight) against the same single-rank run.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
common=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.steps 5
        --optim.lr 1e-2 --optim.warmup_steps 1 --output.save_weights true --train.log_every 100)
rm -rf one_by_four four_by_one pp2
"$build/bin/iris-train" "${common[@]}" --train.micro_batch 4 --train.grad_accum 1 --output.dir one_by_four > a.log 2>&1
"$build/bin/iris-train" "${common[@]}" --train.micro_batch 1 --train.grad_accum 4 --output.dir four_by_one > b.log 2>&1
mpi 2 "$build/bin/iris-train" "${common[@]}" --train.micro_batch 1 --train.grad_accum 4 --parallel.pp 2 --output.dir pp2 > c.log 2>&1
/usr/bin/python3 "$src/tests/mpi/compare_runs.py" one_by_four four_by_one 1e-5 1e-4
/usr/bin/python3 "$src/tests/mpi/compare_runs.py" one_by_four pp2 1e-5 1e-4
