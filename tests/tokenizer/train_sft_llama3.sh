#!/usr/bin/env bash
# SFT of the tiny model on a Llama-3-tokenized sample (llama3-chat template, 128256-token vocabulary,
# configs/models/tiny-llama3.json) through iris-train: the vocabulary is checked against the model
# config (a 2048-token model is refused), the loss starts near ln(128256) = 11.76 and falls by more
# than 2; then iris-convert iris-to-hf --template llama3-chat writes tokenizer.json, tokenizer_config.json
# (chat template) and generation_config.json, and transformers' AutoTokenizer reproduces the SFT
# tokens with apply_chat_template (check_export.py).
# Usage: bash train_sft_llama3.sh SOURCE_DIR BUILD_DIR REF_DIR PYTHON   (from a scratch directory)
set -euo pipefail
src=$1 build=$2 ref=$3 py=$4
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
work=$PWD/train_sft_llama3
rm -rf "$work" && mkdir -p "$work/data" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
sft=("$src/data/sample/sft/ophthalmology_chat.jsonl" "$src/data/sample/sft/ophthalmology_qa.jsonl")
"$build/bin/iris-tokenize" --tokenizer "$ref/llama3/tokenizer.model" --sft --template llama3-chat \
  --templates-dir "$src/configs/templates" --input "${sft[@]}" --output data/chat --progress-seconds 0 >tokenize.log \
  || { cat tokenize.log; fail "tokenize"; }

set +e
"$build/bin/iris-train" --model.config "$src/configs/models/tiny.json" --train.task sft --data.path data/chat \
  --data.tokenizer "$ref/llama3/tokenizer.model" --train.seq_len 128 --train.micro_batch 2 --train.steps 1 \
  --output.dir runs/wrong >wrong.log 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "a 2048-token model trained on 128256-token data"
grep -q "has 128256 pieces but model .*tiny.json has vocab_size 2048" wrong.log || { tail -5 wrong.log; fail "message"; }

"$build/bin/iris-train" --model.config "$src/configs/models/tiny-llama3.json" --train.task sft --data.path data/chat \
  --data.tokenizer "$ref/llama3/tokenizer.model" --train.seq_len 128 --train.micro_batch 2 --train.steps 20 \
  --optim.lr 1e-2 --optim.min_lr 1e-3 --optim.warmup_steps 2 --train.log_every 10 --output.dir runs/sft \
  --checkpoint.dir runs/sft/checkpoints >sft.log 2>&1 || { tail -20 sft.log; fail "SFT run"; }
"$py" - runs/sft/metrics.jsonl <<'PY'
import json, math, sys
m = [json.loads(l) for l in open(sys.argv[1])]
assert len(m) == 20, len(m)
first, last = m[0]["loss"], sum(x["loss"] for x in m[-5:]) / 5
print(f"SFT loss: first {first:.4f} (ln 128256 = {math.log(128256):.4f}), mean of the last 5 steps {last:.4f}")
assert abs(first - math.log(128256)) < 0.3, f"initial loss {first} is not near ln(V)"
assert last < first - 2.0, f"SFT loss did not fall: {first} -> {last}"
PY

"$build/bin/iris-convert" iris-to-hf --checkpoint runs/sft/checkpoints --out hf --dtype fp32 --template llama3-chat \
  --templates-dir "$src/configs/templates" >convert.log 2>&1 || { cat convert.log; fail "iris-to-hf"; }
for f in tokenizer.json tokenizer_config.json generation_config.json original/tokenizer.model config.json; do
  [ -f hf/$f ] || fail "iris-to-hf wrote no $f"
done
"$py" "$src/tests/tokenizer/check_export.py" hf data/chat "${sft[@]}" || fail "export vs transformers"
echo PASS
