#!/usr/bin/env bash
# Activation recomputation changes memory, not results: train.recompute selective and full give the same
# per-step losses, grad norms and final weights as none, BIT-EXACT (compare_runs.py with tolerance 0), at
# tp 2 × pp 2 (the re-run forward repeats its o_proj all-reduce on every TP rank; stage inputs and
# gradients cross the pipeline) on pretraining text, and on packed SFT rows (documents restart positions
# and attention) at tp 2 × pp 2 × dp 2.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
rm -rf data && mkdir data
tokenize_sample_sft data/qa
base=(--model.config model.json --train.steps 6 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3
      --train.log_every 100 --output.save_weights true --parallel.bucket_mb 0.01 --parallel.tp 2 --parallel.pp 2)
text=(--data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2 --train.grad_accum 4)
sft=(--train.task sft --data.path data/qa --sft.packing true --train.seq_len 256 --train.micro_batch 2
     --train.grad_accum 2)
fail=0
run() { run_iris "$1" "$2" "${base[@]}" "${@:3}"; }  # name, ranks, args...
for task in text sft; do
  if [ $task = text ]; then args=("${text[@]}") ranks=4; else args=("${sft[@]}") ranks=8; fi
  run "${task}_none" $ranks "${args[@]}" --train.recompute none || continue
  for mode in selective full; do
    run "${task}_$mode" $ranks "${args[@]}" --train.recompute $mode || continue
    /usr/bin/python3 "$src/tests/mpi/compare_runs.py" "${task}_none" "${task}_$mode" 0 0 ||
      { echo "FAIL ${task}_$mode differs from ${task}_none"; fail=1; }
  done
done
exit $fail
