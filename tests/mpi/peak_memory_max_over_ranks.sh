#!/usr/bin/env bash
# metrics.jsonl peak_memory_mib is the peak RSS over all ranks, rank0_peak_memory_mib rank 0's own.
# The tiny model (4 layers, hidden 256, FFN 688, vocab 2048, untied) at pp=2 with uneven stages:
#  - stage_layers 1,3: stage 1 holds 2 more layers (2 × 725,504 parameters) plus the LM head against
#    stage 0's embedding, ≈ 1.45M more parameters × 16 bytes (fp32 weights, gradients, Adam m and v)
#    ≈ 22 MiB, so the maximum must exceed rank 0's peak by at least 10 MiB;
#  - stage_layers 3,1: rank 0 is the heaviest rank, so the maximum must equal its own peak exactly.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
fail=0
for stages in 1,3 3,1; do
  out=run_${stages/,/}
  rm -rf "$out"
  mpi 2 "$build/bin/iris-train" --model.config "$src/configs/models/tiny.json" --data.path "$build/data/sample_text" \
    --train.seq_len 32 --train.micro_batch 2 --train.grad_accum 2 --train.steps 2 --parallel.pp 2 \
    --parallel.stage_layers "$stages" --output.dir "$out" > "$out.log" 2>&1 || { echo "run $stages failed:"; tail -5 "$out.log"; exit 1; }
  /usr/bin/python3 - "$out/metrics.jsonl" "$stages" <<'PY' || fail=1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
peak, rank0 = rows[-1]["peak_memory_mib"], rows[-1]["rank0_peak_memory_mib"]
print(f"stage_layers {sys.argv[2]}: peak over ranks {peak:.1f} MiB, rank 0 {rank0:.1f} MiB")
if sys.argv[2] == "1,3":
    ok = peak >= rank0 + 10
else:
    ok = peak == rank0
print("ok" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
done
exit $fail
