#!/usr/bin/env bash
# ZeRO-1 memory: the optimizer state rank 0 prints is 12 bytes (fp32 master + Adam m, v) per element of
# its shard = 12 × ceil(local parameters / dp), for dp = 1, 2 and 4 (tp = 1, pp = 1: local = all).
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
for dp in 1 2 4; do
  rm -rf "out_$dp"
  mpi $dp "$build/bin/iris-train" --model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 \
    --train.micro_batch 1 --train.steps 1 --output.dir "out_$dp" > "dp$dp.log" 2>&1
  local_params=$(sed -nE 's/.*rank 0 holds layers .* and ([0-9]+) parameters.*/\1/p' "dp$dp.log")
  state=$(sed -nE 's/.*optimizer state .* = ([0-9]+) bytes.*/\1/p' "dp$dp.log")
  expected=$(( 12 * ((local_params + dp - 1) / dp) ))
  echo "dp=$dp: local parameters $local_params, printed optimizer state $state bytes, expected $expected"
  [ -n "$state" ] && [ "$state" -eq "$expected" ] || { echo "FAIL dp=$dp"; exit 1; }
done
