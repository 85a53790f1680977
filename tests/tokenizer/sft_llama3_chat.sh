#!/usr/bin/env bash
# iris-tokenize --sft --template llama3-chat with Llama 3's tokenizer on the SFT sample (chat and Alpaca
# records) equals transformers' apply_chat_template(messages, tokenize=True) with the Llama 3.1 chat
# template and the same date string; the loss mask is exactly the assistant spans plus <|eot_id|>
# (check_chat.py). Also with --sft.today-date, and --inspect shows the masks.
# Usage: bash sft_llama3_chat.sh SOURCE_DIR BUILD_DIR REF_DIR PYTHON   (from a scratch directory)
set -euo pipefail
src=$1 build=$2 ref=$3 py=$4
tool=$build/bin/iris-tokenize
work=$PWD/sft_llama3_chat
rm -rf "$work" && mkdir -p "$work/out" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
sft=("$src/data/sample/sft/ophthalmology_chat.jsonl" "$src/data/sample/sft/ophthalmology_qa.jsonl")
for tk in llama3/tokenizer.model llama3-hf/tokenizer.json; do
  "$tool" --tokenizer "$ref/$tk" --input "${sft[@]}" --output out/chat --sft --template llama3-chat \
    --templates-dir "$src/configs/templates" --workers 2 --progress-seconds 0 >log.txt || { cat log.txt; fail "$tk"; }
  "$py" "$src/tests/tokenizer/check_chat.py" out/chat "$ref" "26 Jul 2024" "${sft[@]}" || fail "$tk vs transformers"
done
"$tool" --tokenizer "$ref/llama3/tokenizer.model" --input "${sft[@]}" --output out/dated --sft --template llama3-chat \
  --templates-dir "$src/configs/templates" --sft.today-date "08 Dec 2026" --progress-seconds 0 >/dev/null
"$py" "$src/tests/tokenizer/check_chat.py" out/dated "$ref" "08 Dec 2026" "${sft[@]}" || fail "--sft.today-date"
"$tool" --tokenizer "$ref/llama3/tokenizer.model" --input "${sft[0]}" --sft --template llama3-chat \
  --templates-dir "$src/configs/templates" --inspect 1 >inspect.txt
grep -qF '⟦<|begin_of_text|><|start_header_id|>system<|end_header_id|>' inspect.txt || { cat inspect.txt; fail "--inspect"; }
grep -qF '<|start_header_id|>assistant<|end_header_id|>' inspect.txt || { cat inspect.txt; fail "--inspect header"; }
grep -qF 'Today Date: 26 Jul 2024' inspect.txt || { cat inspect.txt; fail "--inspect date"; }
echo PASS
