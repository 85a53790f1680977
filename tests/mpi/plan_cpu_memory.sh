#!/usr/bin/env bash
# The planner's CPU-backend memory prediction (iris-plan --backend cpu) against the trainer's measured
# rank-0 peak RSS (metrics.jsonl rank0_peak_memory_mib) for several layouts of the ~4M-parameter tiny model,
# with and without activation recomputation (train.recompute / iris-plan --recompute).
# Tolerance: |predicted − measured| ≤ 10% of measured. The process baseline (MPI, libraries) depends on
# the machine's packages, so it is measured here first, as docs/planning.md describes (a 32K-parameter
# model, seq 4, 2 steps, at each rank count) and given to the planner with --baseline-mib; what is
# checked is the planner's model of everything the trainer allocates on top of it.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
model=$src/configs/models/tiny.json
cat >micro.json <<JSON
{"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 64}
JSON
declare -A baseline
for ranks in 1 2 4; do
  rm -rf "base_$ranks"
  mpi "$ranks" "$build/bin/iris-train" --model.config micro.json --data.path "$build/data/sample_text" --train.seq_len 4 \
    --train.micro_batch 1 --train.steps 2 --output.dir "base_$ranks" > "base_$ranks.log" 2>&1 \
    || { echo "baseline run failed for $ranks ranks:"; tail -5 "base_$ranks.log"; exit 1; }
  baseline[$ranks]=$(python3 -c 'import json,sys; print(max(json.loads(l)["rank0_peak_memory_mib"] for l in open(sys.argv[1])))' "base_$ranks/metrics.jsonl")
  echo "process baseline with $ranks rank(s): ${baseline[$ranks]} MiB (documented default: $("$build/bin/iris-plan" --backend cpu \
    --model micro.json --ranks "$ranks" --layout 1,1 --seq 4 | sed -nE 's/^ *process baseline *([0-9.]+ MiB).*$/\1/p'))"
done
fail=0
for spec in 1:1,1:4:1 2:2,1:4:2 2:1,2:4:4 4:2,2:2:4 4:1,1:4:2 1:1,1:4:1:full 2:1,2:4:4:full 2:2,1:4:2:selective; do
  IFS=: read -r ranks layout mb ga recompute <<< "$spec"
  recompute=${recompute:-none}
  tp=${layout%,*} pp=${layout#*,} out=out_${ranks}_${tp}_${pp}_${recompute}
  rm -rf "$out"
  mpi "$ranks" "$build/bin/iris-train" --model.config "$model" --data.path "$build/data/sample_text" --train.seq_len 64 \
    --train.micro_batch "$mb" --train.grad_accum "$ga" --parallel.tp "$tp" --parallel.pp "$pp" --train.steps 2 \
    --train.recompute "$recompute" --output.dir "$out" > "$out.log" 2>&1 || { echo "trainer failed for $spec:"; tail -5 "$out.log"; exit 1; }
  measured=$(python3 -c 'import json,sys; print(max(json.loads(l)["rank0_peak_memory_mib"] for l in open(sys.argv[1])))' "$out/metrics.jsonl")
  predicted=$("$build/bin/iris-plan" --backend cpu --model "$model" --ranks "$ranks" --layout "$tp,$pp" --micro-batch "$mb" \
    --grad-accum "$ga" --seq 64 --recompute "$recompute" --baseline-mib "${baseline[$ranks]}" | sed -nE 's/^predicted rank 0 peak RSS: ([0-9.]+) MiB$/\1/p')
  verdict=$(python3 -c "m, p = $measured, $predicted; print('ok' if abs(p - m) <= 0.10 * m else 'FAIL')")
  printf '%-8s ranks=%s tp=%s pp=%s micro_batch=%s grad_accum=%s recompute=%-9s measured %.1f MiB predicted %.1f MiB (%+.1f%%)\n' \
    "$verdict" "$ranks" "$tp" "$pp" "$mb" "$ga" "$recompute" "$measured" "$predicted" "$(python3 -c "print(100 * ($predicted - $measured) / $measured)")"
  [ "$verdict" = ok ] || fail=1
done
exit $fail
