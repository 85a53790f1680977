#!/usr/bin/env bash
# iris-slurm refuses, with a clear message and without writing a script, a node/GPU count that cannot
# hold the layout, a model that does not fit (planner; unless --recompute makes it fit), a missing data
# path, bad --recompute/--comm/--grad-dtype values (bf16 gradients on a CPU job), CPU ranks that cannot hold the layout, and a --signal-lead not shorter than
# --time. A valid request next to each refusal shows the refusal is about the input.
set -uo pipefail
src=$1 build=$2
slurm=$build/bin/iris-slurm
: >data.bin; : >data.idx
fail=0
refuses() {  # expected message fragment, arguments...
  local want=$1; shift
  rm -f job.sbatch
  out=$("$slurm" "$@" --output job.sbatch 2>&1); rc=$?
  if [ "$rc" -ne 2 ] || ! grep -qF -- "$want" <<<"$out" || [ -e job.sbatch ]; then
    echo "FAIL: expected exit 2 with \"$want\" and no script, got $rc: $out"; fail=1
  else
    echo "ok: refused: $out"
  fi
}
accepts() {
  rm -f job.sbatch
  out=$("$slurm" "$@" --output job.sbatch 2>&1); rc=$?
  if [ "$rc" -ne 0 ] || [ ! -s job.sbatch ]; then echo "FAIL: expected a script, got $rc: $out"; fail=1; else echo "ok: $out"; fi
}
m7=$src/configs/models/llama2-7b.json
m13=$src/configs/models/llama2-13b.json
accepts  --task pretrain --model "$m7" --nodes 1 --gpus-per-node 8 --layout 4,2 --data data
refuses "cannot hold layout tp=4 pp=2" --task pretrain --model "$m7" --nodes 1 --gpus-per-node 6 --layout 4,2 --data data
refuses "cannot hold layout tp=8 pp=4" --task pretrain --model "$m7" --nodes 3 --gpus-per-node 8 --layout 8,4 --data data
refuses "does not fit" --task pretrain --model "$m13" --nodes 1 --gpus-per-node 1 --gpu a100-40gb --layout 1,1 --data data
refuses "does not fit" --task pretrain --model "$m13" --nodes 1 --gpus-per-node 1 --gpu a100-40gb --layout auto --data data
refuses "data file $PWD/nowhere.bin does not exist" --task pretrain --model "$m7" --nodes 1 --data "$PWD/nowhere"
refuses "--data PREFIX is required" --task pretrain --model "$m7" --nodes 1   # no --data at all: says what is needed
refuses "data_loss_mask.bin does not exist" --task sft --model "$m7" --nodes 1 --data data
# Activation recomputation: what the planner assumes is what the script asks iris-train for.
big=(--task pretrain --model "$m7" --nodes 1 --gpus-per-node 8 --gpu a100-40gb --layout 4,2 --micro-batch 4
     --global-batch 64 --data data)
refuses "or --recompute selective|full" "${big[@]}"
accepts "${big[@]}" --recompute full
if grep -qF '"--train.device" "cuda" "--parallel.comm" "nccl" "--train.recompute" "full"' job.sbatch; then
  echo "ok: a GPU job runs iris-train with --train.device cuda, --parallel.comm nccl and the planned recompute"
else
  echo "FAIL: the GPU job's flags: $(grep TRAIN_ARGS= job.sbatch)"; fail=1
fi
refuses '--recompute must be none, selective or full, got "some"' "${big[@]}" --recompute some
refuses '--comm must be nccl or mpi, got "gloo"' "${big[@]}" --comm gloo
# bf16 gradients: passed to iris-train (the planner counts them too); refused for CPU jobs and bad values.
accepts "${big[@]}" --recompute full --grad-dtype bf16
if grep -qF '"--train.recompute" "full" "--train.grad_dtype" "bf16"' job.sbatch; then
  echo "ok: --grad-dtype bf16 reaches iris-train"
else
  echo "FAIL: --grad-dtype bf16 flags: $(grep TRAIN_ARGS= job.sbatch)"; fail=1
fi
refuses '--grad-dtype must be fp32 or bf16, got "fp16"' "${big[@]}" --recompute full --grad-dtype fp16
refuses '--grad-dtype bf16 is for GPU jobs' --model "$src/configs/models/tiny.json" --cpu-ranks 4 --layout 2,2 \
  --data data --grad-dtype bf16
accepts  --model "$src/configs/models/tiny.json" --cpu-ranks 4 --layout 2,2 --data data
refuses "cannot hold layout tp=2 pp=2" --model "$src/configs/models/tiny.json" --cpu-ranks 6 --layout 2,2 --data data
# A signal lead as long as the time limit would checkpoint and requeue the job at its first step, every time.
refuses "--signal-lead 300 s is not shorter than --time 00:05:00 (300 s)" --model "$src/configs/models/tiny.json" \
  --cpu-ranks 4 --data data --time 00:05:00
accepts --model "$src/configs/models/tiny.json" --cpu-ranks 4 --data data --time 1-00:05:00 --signal-lead 86400
refuses "is not shorter than --time 1-00:00:00 (86400 s)" --model "$src/configs/models/tiny.json" --cpu-ranks 4 \
  --data data --time 1-00:00:00 --signal-lead 86400
exit $fail
