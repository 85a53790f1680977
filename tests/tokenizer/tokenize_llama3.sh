#!/usr/bin/env bash
# iris-tokenize with Llama 3's tokenizer (tiktoken tokenizer.model and tokenizer.json, from the
# tokenizer_reference fixture): the corpus becomes an int32 dataset whose documents are exactly
# [<|begin_of_text|>] + tiktoken's ids + [<|end_of_text|>], the same for 1 and 2 workers and for both
# files; --allow-special; invalid UTF-8 is refused naming FILE:LINE and leaves no .idx, and with
# --replace-invalid equals tiktoken on Python's decode(errors="replace").
# Usage: bash tokenize_llama3.sh SOURCE_DIR BUILD_DIR REF_DIR PYTHON   (from a scratch directory)
set -euo pipefail
src=$1 build=$2 ref=$3 py=$4
tool=$build/bin/iris-tokenize
[ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }
work=$PWD/tokenize_llama3
rm -rf "$work" && mkdir -p "$work/out" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

cat >check.py <<'PY'
# check.py PREFIX REF_DIR MODE [INPUT...]: reads PREFIX.idx/.bin as Megatron does and compares every
# document with [BOS] + tiktoken(text) + [EOS]. MODE: files (INPUT are text files), special (allowed
# specials), replace (invalid bytes read with errors="replace").
import base64, struct, sys
import numpy as np
import tiktoken
prefix, ref, mode, inputs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])
ranks = {}
for line in open(f"{ref}/llama3/tokenizer.model", "rb"):
    if line.strip():
        t, r = line.split()
        ranks[base64.b64decode(t)] = int(r)
names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
         "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
         "<|eot_id|>", "<|python_tag|>", "<|image|>"]
names += [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(names))]
pat = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
enc = tiktoken.Encoding("llama3", pat_str=pat, mergeable_ranks=ranks,
                        special_tokens={n: 128000 + i for i, n in enumerate(names)})
idx = open(prefix + ".idx", "rb").read()
assert idx[:9] == b"MMIDIDX\x00\x00", "bad magic"
version, dtype, n = struct.unpack_from("<QBQ", idx, 9)
assert dtype == 4, f"dtype code {dtype}, expected 4 (int32) for a 128256-token vocabulary"
lengths = np.frombuffer(idx, np.int32, n, 9 + 17 + 8)
pointers = np.frombuffer(idx, np.int64, n, 9 + 17 + 8 + 4 * n)
data = np.fromfile(prefix + ".bin", np.int32)
docs = [data[p // 4: p // 4 + l].tolist() for p, l in zip(pointers, lengths)]
texts = []
for path in inputs:
    raw = open(path, "rb").read()
    texts.append(raw.decode("utf-8", errors="replace" if mode == "replace" else "strict"))
assert len(docs) == len(texts), f"{len(docs)} documents, expected {len(texts)}"
for path, text, doc in zip(inputs, texts, docs):
    ids = enc.encode(text, allowed_special="all") if mode == "special" else enc.encode(text, disallowed_special=())
    assert doc == [128000] + ids + [128001], f"{path}: tokens differ from tiktoken"
print(f"check: {len(docs)} documents, {len(data)} tokens equal tiktoken")
PY

corpus=("$src"/data/sample/corpus/*.txt)
for w in 1 2; do
  "$tool" --tokenizer "$ref/llama3/tokenizer.model" --input "$src/data/sample/corpus" --output out/tt$w --workers $w \
    --progress-seconds 0 >log_tt$w.txt || { cat log_tt$w.txt; fail "tiktoken file, $w workers"; }
done
"$tool" --tokenizer "$ref/llama3-hf/tokenizer.json" --input "$src/data/sample/corpus" --output out/hf --workers 2 \
  --progress-seconds 0 >log_hf.txt || { cat log_hf.txt; fail "tokenizer.json"; }
grep -q "int32 tokens" log_tt1.txt || { cat log_tt1.txt; fail "summary does not say int32"; }
"$py" check.py out/tt1 "$ref" files "${corpus[@]}" || fail "corpus vs tiktoken"
cmp out/tt1.bin out/tt2.bin && cmp out/tt1.idx out/tt2.idx || fail "1 and 2 workers differ"
cmp out/tt1.bin out/hf.bin && cmp out/tt1.idx out/hf.idx || fail "tokenizer.model and tokenizer.json differ"

# Special-token text: ordinary text by default, the token with --allow-special.
printf 'Hello<|eot_id|> and <|start_header_id|>user<|end_header_id|>\n' >special.txt
"$tool" --tokenizer "$ref/llama3/tokenizer.model" --input special.txt --output out/plain --progress-seconds 0 >/dev/null
"$py" check.py out/plain "$ref" files special.txt || fail "special text without --allow-special"
"$tool" --tokenizer "$ref/llama3/tokenizer.model" --input special.txt --output out/special --allow-special \
  --progress-seconds 0 >/dev/null
"$py" check.py out/special "$ref" special special.txt || fail "--allow-special"

# Invalid UTF-8 on line 3 of a text file and line 2 of a JSONL file.
printf 'line one\nline two\nbad \xC3\x28 byte\n' >bad.txt
printf '{"text": "fine"}\n{"text": "caf\xE9"}\n' >bad.jsonl
for f in bad.txt bad.jsonl; do
  want=$([ $f = bad.txt ] && echo "$f:3" || echo "$f:2")
  set +e
  "$tool" --tokenizer "$ref/llama3/tokenizer.model" --input $f --output out/bad --progress-seconds 0 >log_bad.txt 2>&1
  rc=$?
  set -e
  [ $rc -eq 2 ] || { cat log_bad.txt; fail "$f: exit status $rc, expected 2"; }
  grep -q "$want: invalid UTF-8" log_bad.txt || { cat log_bad.txt; fail "$f: message does not name $want"; }
  grep -q -- "--replace-invalid" log_bad.txt || { cat log_bad.txt; fail "$f: message does not name --replace-invalid"; }
  [ ! -e out/bad.idx ] && [ ! -e out/bad.bin ] || fail "$f: a failed run left output"
done
"$tool" --tokenizer "$ref/llama3/tokenizer.model" --input bad.txt --output out/replaced --replace-invalid \
  --progress-seconds 0 >/dev/null || fail "--replace-invalid"
"$py" check.py out/replaced "$ref" replace bad.txt || fail "--replace-invalid vs Python's errors=replace"
echo "PASS"
