#!/usr/bin/env bash
# Turns the bundled ophthalmology sample into training data:
#   BUILD/data/tokenizer.model   a sentencepiece BPE model trained on data/sample/corpus (spm_train)
#   BUILD/data/sample_text.{bin,idx}   the corpus tokenized by iris-tokenize (Megatron indexed format)
# Usage: tools/prepare-sample.sh [BUILD_DIR]   (default: build). Idempotent: skips finished steps.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
out=$build/data
mkdir -p "$out"

if [ ! -f "$out/tokenizer.model" ]; then
  inputs=$(ls "$root"/data/sample/corpus/*.txt | paste -sd, -)
  # Llama-style BPE: unk 0, bos 1, eos 2, byte fallback, digits split, identity normalisation that keeps
  # whitespace (as Llama 2's tokenizer.model). One thread keeps it reproducible.
  spm_train --input="$inputs" --model_prefix="$out/tokenizer.tmp" --vocab_size=2048 --model_type=bpe \
    --character_coverage=1.0 --byte_fallback=true --split_digits=true --unk_id=0 --bos_id=1 --eos_id=2 \
    --pad_id=-1 --normalization_rule_name=identity --remove_extra_whitespaces=false \
    --max_sentence_length=100000 --num_threads=1 --minloglevel=2 >"$out/spm_train.log" 2>&1 \
    || { cat "$out/spm_train.log" >&2; exit 1; }
  mv "$out/tokenizer.tmp.vocab" "$out/tokenizer.vocab"
  mv "$out/tokenizer.tmp.model" "$out/tokenizer.model"
fi

if [ ! -f "$out/sample_text.idx" ]; then
  "$build/bin/iris-tokenize" --tokenizer "$out/tokenizer.model" --input "$root/data/sample/corpus" \
    --output "$out/sample_text"
fi
echo "sample data ready in $out"
