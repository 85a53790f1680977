#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, prepares the bundled
# ophthalmology sample (tokenizer + tokens) and trains the tiny Llama on the CPU with 4 MPI ranks
# on this machine: tensor parallel 2 × pipeline parallel 2 (oversubscribed where there are fewer
# cores). Extra arguments go to iris-train (e.g. --train.steps=50).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${IRIS_BUILD_DIR:-build}

tools/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" --target iris-train iris-tokenize
tools/prepare-sample.sh "$build"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Four ranks share the cores: split the OpenMP threads between them.
threads=$(( $(nproc) / 4 )); [ "$threads" -ge 1 ] || threads=1
mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=$threads "$build/bin/iris-train" --config configs/train/tiny-cpu.ini \
  --parallel.tp 2 --parallel.pp 2 --train.grad_accum 4 --train.micro_batch 2 \
  --data.path "$build/data/sample_text" --data.tokenizer "$build/data/tokenizer.model" "$@"
echo "metrics: runs/quickstart/metrics.jsonl"
