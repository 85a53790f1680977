#!/usr/bin/env bash
# A model_type "mistral" config trains (its window no shorter than train.seq_len: full attention), and one
# whose sliding window is shorter than train.seq_len is refused before anything is written (exit 2, reason).
set -euo pipefail
src=$1 build=$2
export OMP_NUM_THREADS=1
model() {  # path, sliding_window
  cat >"$1" <<JSON
{"model_type": "mistral", "architectures": ["MistralForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048,
 "rms_norm_eps": 1e-5, "rope_theta": 1000000.0, "sliding_window": $2, "max_position_embeddings": 64}
JSON
}
model full.json 16
model windowed.json 8
args=(--data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 4 --train.steps 30
      --optim.lr 1e-2 --optim.warmup_steps 2 --train.log_every 100)
rm -rf full windowed
"$build/bin/iris-train" --model.config full.json "${args[@]}" --output.dir full > full.log 2>&1 || { tail -20 full.log; exit 1; }
/usr/bin/python3 - full/metrics.jsonl <<'PY'
import json, sys
loss = [json.loads(l)["loss"] for l in open(sys.argv[1])]
first, last = sum(loss[:5]) / 5, sum(loss[-5:]) / 5
assert len(loss) == 30 and last < first - 0.5, f"mistral run did not learn: {first:.3f} -> {last:.3f}"
print(f"mistral config trained: loss {first:.3f} -> {last:.3f} (means of the first and last 5 steps)")
PY
if "$build/bin/iris-train" --model.config windowed.json "${args[@]}" --output.dir windowed > windowed.log 2>&1; then
  echo "FAIL: an active sliding window was accepted"; exit 1
fi
status=$(grep -c "sliding_window = 8 is active at train.seq_len = 16" windowed.log || true)
[ "$status" -ge 1 ] || { echo "FAIL: no reason given"; cat windowed.log; exit 1; }
[ ! -e windowed ] || { echo "FAIL: output.dir was created for a refused run"; exit 1; }
echo "the active sliding window was refused with its reason"
