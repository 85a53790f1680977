#!/usr/bin/env bash
# Regenerates the example job scripts beside this file (run from anywhere; needs build/bin/iris-slurm,
# or IRIS_SLURM=path). tests/slurm/test_generated_scripts.sh checks they are current and pass
# `sbatch --test-only`. Data paths use $SCRATCH and are checked by the scripts when they run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:-jobs/slurm/examples}
slurm=${IRIS_SLURM:-$root/build/bin/iris-slurm}
cd "$root"
common=(--iris-home '$HOME/iris' --partition gpu --gpu a100-80gb --gpus-per-node 8 --time 2-00:00:00)
# Continued pretraining on EYE-lit-style text (ophthalmology papers and textbooks), from HF weights.
"$slurm" --task pretrain --model configs/models/llama2-7b.json --nodes 2 --layout auto --global-batch 256 \
  --data '$SCRATCH/eye-lit/eye_lit_text' --tokenizer '$SCRATCH/llama2-7b-hf/tokenizer.model' \
  --init-from '$SCRATCH/llama2-7b-hf' "${common[@]}" --output "$out/llama2-7b-pretrain.sbatch"
"$slurm" --task pretrain --model configs/models/llama2-13b.json --nodes 4 --layout auto --global-batch 256 \
  --data '$SCRATCH/eye-lit/eye_lit_text' --tokenizer '$SCRATCH/llama2-13b-hf/tokenizer.model' \
  --init-from '$SCRATCH/llama2-13b-hf' "${common[@]}" --output "$out/llama2-13b-pretrain.sbatch"
# SFT on instruction data (iris-tokenize --sft output: tokens + loss mask), from the pretrained checkpoint.
"$slurm" --task sft --model configs/models/llama2-7b.json --nodes 1 --layout 8,1 --global-batch 64 \
  --data '$SCRATCH/eye-instruct/sft' --tokenizer '$SCRATCH/llama2-7b-hf/tokenizer.model' \
  --init-from '$SCRATCH/runs/iris-pretrain-llama2-7b/checkpoints' "${common[@]}" --output "$out/llama2-7b-sft.sbatch"
