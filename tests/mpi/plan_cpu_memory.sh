#!/usr/bin/env bash
# The planner's CPU-backend memory prediction (iris-plan --backend cpu) against the trainer's measured
# rank-0 peak RSS (metrics.jsonl rank0_peak_memory_mib) for several layouts of the ~4M-parameter tiny model.
# Tolerance: |predicted − measured| ≤ 10% of measured.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
model=$src/configs/models/tiny.json
fail=0
for spec in 1:1,1:4:1 2:2,1:4:2 2:1,2:4:4 4:2,2:2:4 4:1,1:4:2; do
  IFS=: read -r ranks layout mb ga <<< "$spec"
  tp=${layout%,*} pp=${layout#*,} out=out_${ranks}_${tp}_${pp}
  rm -rf "$out"
  mpi "$ranks" "$build/bin/iris-train" --model.config "$model" --data.path "$build/data/sample_text" --train.seq_len 64 \
    --train.micro_batch "$mb" --train.grad_accum "$ga" --parallel.tp "$tp" --parallel.pp "$pp" --train.steps 2 \
    --output.dir "$out" > "$out.log" 2>&1 || { echo "trainer failed for $spec:"; tail -5 "$out.log"; exit 1; }
  measured=$(python3 -c 'import json,sys; print(max(json.loads(l)["rank0_peak_memory_mib"] for l in open(sys.argv[1])))' "$out/metrics.jsonl")
  predicted=$("$build/bin/iris-plan" --backend cpu --model "$model" --ranks "$ranks" --layout "$tp,$pp" --micro-batch "$mb" \
    --grad-accum "$ga" --seq 64 | sed -nE 's/^predicted rank 0 peak RSS: ([0-9.]+) MiB$/\1/p')
  verdict=$(python3 -c "m, p = $measured, $predicted; print('ok' if abs(p - m) <= 0.10 * m else 'FAIL')")
  printf '%-8s ranks=%s tp=%s pp=%s micro_batch=%s grad_accum=%s measured %.1f MiB predicted %.1f MiB (%+.1f%%)\n' \
    "$verdict" "$ranks" "$tp" "$pp" "$mb" "$ga" "$measured" "$predicted" "$(python3 -c "print(100 * ($predicted - $measured) / $measured)")"
  [ "$verdict" = ok ] || fail=1
done
exit $fail
