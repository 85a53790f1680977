#!/usr/bin/env bash
# MFU in metrics.jsonl: null without train.peak_tflops; with it, every step's mfu equals
# tokens_per_s × FLOPs per token / (ranks × peak), FLOPs per token = 6 × (parameters − the input
# embedding when untied) + 12 · L · C · T (docs/design.md, "Performance"), computed here from the config independently.
set -euo pipefail
src=$1 build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
common=(--model.config "$src/configs/models/tiny.json" --data.path "$build/data/sample_text" --train.seq_len 32
        --train.micro_batch 2 --train.steps 3)
rm -rf none peak
"$build/bin/iris-train" "${common[@]}" --output.dir none >none.log 2>&1
mpirun --oversubscribe -np 2 "$build/bin/iris-train" "${common[@]}" --parallel.tp 2 --train.peak_tflops 0.05 \
  --output.dir peak >peak.log 2>&1
grep -q "MFU [0-9.]*%" peak.log || { echo "FAIL: no MFU in the progress line"; exit 1; }
/usr/bin/python3 - "$src/configs/models/tiny.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
C, F, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
kv = C // c["num_attention_heads"] * c["num_key_value_heads"]
layer = 2 * C * C + 2 * C * kv + 3 * C * F + 2 * C
params = V * C + L * layer + C + (0 if c["tie_word_embeddings"] else V * C)
fpt = 6 * (params - (0 if c["tie_word_embeddings"] else V * C)) + 12 * L * C * 32
for m in map(json.loads, open("none/metrics.jsonl")):
    assert m["mfu"] is None, m
for m in map(json.loads, open("peak/metrics.jsonl")):
    want = m["tokens_per_s"] * fpt / (2 * 0.05e12)
    assert abs(m["mfu"] - want) <= 1e-9 * want, (m["step"], m["mfu"], want)
print(f"ok: mfu null without a peak; with 2 ranks x 0.05 TFLOP/s it is tokens/s x {fpt} FLOPs per token / peak "
      f"(last step {m['mfu']:.3f})")
PY
