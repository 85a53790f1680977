#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, prepares the bundled
# ophthalmology sample (tokenizer + tokens) and trains the tiny Llama on the CPU.
# Extra arguments go to iris-train (e.g. --train.steps=50).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${IRIS_BUILD_DIR:-build}

tools/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" --target iris-train iris-tokenize
tools/prepare-sample.sh "$build"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/bin/iris-train" --config configs/train/tiny-cpu.ini \
  --data.path "$build/data/sample_text" --data.tokenizer "$build/data/tokenizer.model" "$@"
echo "metrics: runs/quickstart/metrics.jsonl"
