#!/usr/bin/env bash
# CPU training-step benchmark: Iris and PyTorch on the same model and shapes with the same thread
# count, run one after the other in the same invocation; prints both and the ratio.
# Usage: bench/cpu_step.sh BUILD_DIR [PYTHON]   (PYTHON: the tools/setup-pyref.sh environment)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
python=${2:-$root/.venv-ref/bin/python}
threads=${IRIS_BENCH_THREADS:-$(nproc)}
args=(--model "$root/configs/models/bench-10m.json" --seq 256 --batch 8 --steps ${IRIS_BENCH_STEPS:-10} --warmup 2)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); threads $threads"
iris=$(OMP_NUM_THREADS=$threads "$build/bin/iris-cpu-step-bench" "${args[@]}")
echo "$iris"
torch=$("$python" "$root/bench/torch_cpu_step.py" "${args[@]}" --threads "$threads")
echo "$torch"
ti=$(sed -E 's/.* ([0-9]+) tokens\/s.*/\1/' <<<"$iris")
tt=$(sed -E 's/.* ([0-9]+) tokens\/s.*/\1/' <<<"$torch")
awk -v a="$ti" -v b="$tt" 'BEGIN { printf "ratio iris/pytorch tokens/s: %.2f\n", a / b }'
