#!/usr/bin/env bash
# gpu-check-timeout: 120
# The attention kernels alone (iris-attention-bench) at the benchmark models' shapes, sequence 4096:
# llama2-7b (32 heads of 128, no GQA) and llama3.2-1b (32 heads of 64 over 8 KV heads). Prints ms and
# TFLOP/s per kernel, the wmma and mma forwards side by side; a copy goes to $IRIS_GPU_ARTIFACTS.
# bash bench/gpu-attention.sh SRC BUILD (tools/gpu-check.sh's bench section runs it before gpu-bench.sh).
set -uo pipefail
build=$2
out=${IRIS_GPU_ARTIFACTS:-$PWD}
mkdir -p "$out"
status=0
for shape in "1 4096 32 32 128" "1 4096 32 8 64"; do
  # shellcheck disable=SC2086
  "$build/bin/iris-attention-bench" $shape 10 | tee -a "$out/attention-bench.txt"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 77 ] && exit 77
  [ "$rc" = 0 ] || status=1
done
exit $status
