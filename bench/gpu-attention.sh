#!/usr/bin/env bash
# gpu-check-timeout: 120
# The attention kernels alone (iris-attention-bench) at the benchmark models' shapes, sequence 4096:
# llama2-7b (32 heads of 128, no GQA) and llama3.2-1b (32 heads of 64 over 8 KV heads). Prints ms and
# TFLOP/s per kernel, the wmma and mma kernels side by side; a copy goes to $IRIS_GPU_ARTIFACTS when set.
# bash bench/gpu-attention.sh SRC BUILD (tools/gpu-check.sh's bench section runs it before gpu-bench.sh).
set -uo pipefail
build=$2
copy=/dev/null  # a copy of the output only where gpu-check collects artifacts
if [ -n "${IRIS_GPU_ARTIFACTS:-}" ]; then mkdir -p "$IRIS_GPU_ARTIFACTS"; copy=$IRIS_GPU_ARTIFACTS/attention-bench.txt; fi
status=0
for shape in "1 4096 32 32 128" "1 4096 32 8 64"; do
  # shellcheck disable=SC2086
  "$build/bin/iris-attention-bench" $shape 10 | tee -a "$copy"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 77 ] && exit 77
  [ "$rc" = 0 ] || status=1
done
exit $status
