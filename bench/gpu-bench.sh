#!/usr/bin/env bash
# gpu-check-timeout: 420
# The GPU benchmark (iris-bench: Iris vs PyTorch, docs/benchmarks.md) as tools/gpu-check.sh runs it
# from the bundle: bash bench/gpu-bench.sh SRC BUILD (both the bundle root), the machine's python3 in
# $IRIS_PYTHON, results and logs under $IRIS_GPU_ARTIFACTS/bench. The default is sized for the device
# tool's few minutes: both models at sequence 4096 (llama2-7b, the target, first), 8 micro-batches of 1
# per step (fewer would let the once-per-step optimizer weigh on MFU), 2 warm-up steps then 3 timed.
# IRIS_BENCH_ARGS replaces those settings (e.g. "--models llama2-7b --grad-accum 4 --steps 8").
set -uo pipefail
src=$1 build=$2
out=${IRIS_GPU_ARTIFACTS:-$PWD}/bench
mkdir -p "$out"
"${IRIS_PYTHON:-python3}" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
read -ra args <<< "${IRIS_BENCH_ARGS:---models llama2-7b,llama3.2-1b --seq 4096 --micro-batch 1 --grad-accum 8 --steps 3 --warmup-steps 2 --recompute auto}"
exec "$build/bin/iris-bench" --device cuda --python "${IRIS_PYTHON:-python3}" --out "$out" "${args[@]}"
