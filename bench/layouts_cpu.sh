#!/usr/bin/env bash
# Tokens/s of the quickstart model (configs/train/tiny-cpu.ini) on 1, 2 and 4 CPU ranks over several
# (tp, pp, dp) layouts, same global batch (8 × 128 tokens) everywhere. The cores are split between
# the ranks (OMP_NUM_THREADS = cores / ranks, at least 1). Prints the mean tokens/s over steps 6..N.
# Usage: bench/layouts_cpu.sh BUILD_DIR [STEPS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
steps=${2:-25}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf "%-10s %-6s %-8s %12s %10s\n" layout ranks threads "tokens/s" "vs 1 rank"
base=""
for layout in 1,1,1 2,1,1 1,2,1 1,1,2 2,2,1 2,1,2 1,2,2 1,1,4; do
  IFS=, read -r tp pp dp <<<"$layout"
  n=$((tp * pp * dp))
  threads=$(( $(nproc) / n )); [ "$threads" -ge 1 ] || threads=1
  mpirun --oversubscribe -np $n -x OMP_NUM_THREADS=$threads "$build/bin/iris-train" \
    --config "$root/configs/train/tiny-cpu.ini" --data.path "$build/data/sample_text" --data.tokenizer "" \
    --parallel.tp $tp --parallel.pp $pp --train.micro_batch 2 --train.grad_accum $((4 / dp)) \
    --train.steps "$steps" --train.log_every 1000 --output.dir "$work/$n-$tp$pp$dp" >/dev/null 2>&1
  tps=$(/usr/bin/python3 -c "
import json, sys
m = [json.loads(l) for l in open('$work/$n-$tp$pp$dp/metrics.jsonl')][5:]
print(round(len(m) * 8 * 128 / sum(x['step_time_s'] for x in m)))")
  [ -n "$base" ] || base=$tps
  printf "%-10s %-6s %-8s %12s %10s\n" "$tp,$pp,$dp" "$n" "$threads" "$tps" "$(awk -v a=$tps -v b=$base 'BEGIN{printf "%.2f", a/b}')"
done
