#!/usr/bin/env bash
# A tiny-model CPU job written by iris-slurm (4 ranks, tp=2 pp=2) runs to completion through sbatch on
# the local cluster, launched by srun --mpi=pmix, and leaves its metrics (every step) and checkpoints.
set -euo pipefail
src=$1 build=$2
. "$src/tests/slurm/common.bash"
use_cluster
rm -rf runs ./*.log job.sbatch
"$build/bin/iris-slurm" --task pretrain --model "$src/configs/models/tiny.json" --cpu-ranks 4 --layout 2,2 \
  --run-config "$src/configs/train/tiny-cpu.ini" --data "$build/data/sample_text" --tokenizer "$build/data/tokenizer.model" \
  --time 00:10:00 --job-name iris-cpu-test --run-dir runs/cpu \
  --train-arg=--train.steps=12 --train-arg=--checkpoint.every=5 --train-arg=--train.micro_batch=2 --output job.sbatch
grep -q -- '--mpi=pmix' job.sbatch
grep -q -- '--checkpoint.load "\$load"' job.sbatch
id=$(sbatch --parsable job.sbatch)
echo "submitted job $id"
state=$(wait_job "$id" 240)
cat "iris-cpu-test-$id.log"
[ "$state" = COMPLETED ] || { echo "FAIL: job $id ended $state"; exit 1; }
grep -q "finished with status 0" "iris-cpu-test-$id.log"
steps=$(wc -l <runs/cpu/metrics.jsonl)
[ "$steps" -eq 12 ] || { echo "FAIL: metrics.jsonl has $steps lines, expected 12"; exit 1; }
ls -d runs/cpu/checkpoints/step_* || { echo "FAIL: no checkpoint in runs/cpu/checkpoints"; exit 1; }
echo "job $id: 12 steps of metrics and checkpoints $(ls runs/cpu/checkpoints | paste -sd' ')"
