#!/usr/bin/env bash
# iris-tokenize end to end: trains a small Llama-style sentencepiece model with spm_train, tokenizes
# a text directory and a JSONL file, and checks the output with an independent Python reader that
# parses the .idx exactly as Megatron-LM does (and decodes every document back with spm_decode).
# Then bad inputs: each must exit non-zero with a message naming the culprit and leave no output.
# Usage: bash tokenize_cli.sh SOURCE_DIR BUILD_DIR   (from a scratch directory)
set -euo pipefail
src=$1 build=$2
tool=$build/bin/iris-tokenize
[ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }
work=$PWD/tokenize_cli
rm -rf "$work"
mkdir -p "$work/out"
cd "$work"

fail() { echo "FAIL: $*"; exit 1; }

# ---- inputs ----
words=(the retina lens cornea pressure optic nerve glaucoma patient eye drops vision of and a with angle
       closure treatment field loss is macula edema laser surgery iris pupil trabecular meshwork)
RANDOM=7
sentence() {
  local n=$((5 + RANDOM % 9)) s=""
  for ((i = 0; i < n; i++)); do s+="${s:+ }${words[RANDOM % ${#words[@]}]}"; done
  echo "$s $((RANDOM % 500))."
}
for ((k = 0; k < 1500; k++)); do sentence; done >train.txt

mkdir -p corpus/sub corpus/.cache
printf '%s' "$(sentence)" >corpus/b.txt                          # one line, no newline at the end
printf '%s\n\n%s\n' "$(sentence)" "$(sentence)" >corpus/a.md       # several lines, kept as one document
printf '%s\n' "$(sentence)" >corpus/sub/c.txt
echo "not an input" >corpus/notes.csv                               # extension not searched
echo "hidden" >corpus/.cache/skip.txt                               # hidden directory skipped
cat >docs.jsonl <<EOF
{"body": "$(sentence)", "id": 1}
{"body": "caf\u00e9 and the \"optic\" nerve", "id": 2}

{"body": "", "id": 3}
{"id": 4, "body": "$(sentence)"}
EOF

# Llama 2's tokenizer settings: BPE, unk 0, bos 1, eos 2, byte fallback, whitespace kept as is.
spm_train --input=train.txt --model_prefix=spm --vocab_size=500 --model_type=bpe --character_coverage=1.0 \
  --byte_fallback=true --split_digits=true --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=1 --minloglevel=2 >spm_train.log 2>&1 \
  || { cat spm_train.log; fail "spm_train"; }

# ---- independent reader ----
cat >check_idx.py <<'PY'
"""Checks PREFIX.bin/.idx against the expected documents. The header is parsed the way Megatron-LM's
_IndexReader does: 9-byte magic, <Q version, <B dtype code, <Q sequence count, <Q document count,
then int32 lengths, int64 byte pointers, int64 document indices.
usage: check_idx.py PREFIX MODEL EOS(0|1) SOURCE...   SOURCE = text:PATH | jsonl:PATH:FIELD"""
import json, os, struct, subprocess, sys
import numpy as np

prefix, model, want_eos, sources = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
BOS, EOS = 1, 2

def fail(msg):
    sys.exit(f"FAIL {prefix}: {msg}")

docs = []
for s in sources:
    kind, rest = s.split(":", 1)
    if kind == "text":
        docs.append(open(rest, encoding="utf-8", newline="").read())
    else:
        path, field = rest.rsplit(":", 1)
        for line in open(path, encoding="utf-8"):
            if line.strip():
                docs.append(json.loads(line)[field])
docs = [d for d in docs if d]  # iris-tokenize skips empty documents

idx = open(prefix + ".idx", "rb").read()
if idx[:9] != b"MMIDIDX\x00\x00": fail("bad magic")
(version,) = struct.unpack("<Q", idx[9:17])
(code,) = struct.unpack("<B", idx[17:18])
seq_count, doc_count = struct.unpack("<QQ", idx[18:34])
if version != 1: fail(f"version {version}")
if code != 8: fail(f"dtype code {code}, expected 8 (uint16) for a 500-piece vocabulary")
if len(idx) != 34 + 4 * seq_count + 8 * seq_count + 8 * doc_count: fail(f"idx size {len(idx)}")
lengths = np.frombuffer(idx, dtype=np.int32, count=seq_count, offset=34)
pointers = np.frombuffer(idx, dtype=np.int64, count=seq_count, offset=34 + lengths.nbytes)
doc_idx = np.frombuffer(idx, dtype=np.int64, count=doc_count, offset=34 + lengths.nbytes + pointers.nbytes)
if seq_count != len(docs): fail(f"{seq_count} sequences, expected {len(docs)}")
if doc_count != seq_count + 1 or not np.array_equal(doc_idx, np.arange(seq_count + 1)): fail(f"doc_idx {doc_idx}")
expected_pointers = np.concatenate([[0], np.cumsum(lengths.astype(np.int64))[:-1]]) * 2
if not np.array_equal(pointers, expected_pointers): fail(f"pointers {pointers}")
tokens = np.fromfile(prefix + ".bin", dtype=np.uint16)
if tokens.size * 2 != os.path.getsize(prefix + ".bin") or tokens.size != lengths.sum(): fail("bin size")

def spm(cmd, text):
    out = subprocess.run([cmd, f"--model={model}"] + (["--input_format=id"] if cmd == "spm_decode" else
                         ["--output_format=id"]), input=text.encode(), capture_output=True, check=True)
    return out.stdout.decode()

for i, text in enumerate(docs):
    seq = tokens[pointers[i] // 2: pointers[i] // 2 + lengths[i]].astype(np.int64)
    body = seq[1:-1] if want_eos else seq[1:]
    if seq[0] != BOS: fail(f"document {i} starts with {seq[0]}, not BOS")
    if want_eos and seq[-1] != EOS: fail(f"document {i} ends with {seq[-1]}, not EOS")
    if np.isin(body, [BOS, EOS]).any(): fail(f"document {i} has BOS/EOS inside")
    decoded = spm("spm_decode", " ".join(map(str, body)) + "\n")
    if decoded[:-1] != text: fail(f"document {i} decodes to {decoded[:-1]!r}, expected {text!r}")
    if "\n" not in text:  # spm_encode works line by line, so compare ids for one-line documents
        ids = [int(t) for t in spm("spm_encode", text + "\n").split()]
        if ids != body.tolist(): fail(f"document {i}: ids {body.tolist()} != spm_encode {ids}")
print(f"ok {prefix}: {seq_count} documents, {tokens.size} tokens")
PY
check() { /usr/bin/python3 check_idx.py "$@" || fail "check_idx.py $*"; }

# ---- good runs ----
text_sources=(text:corpus/a.md text:corpus/b.txt text:corpus/sub/c.txt)  # sorted order
jsonl_sources=(jsonl:docs.jsonl:body)

"$tool" --tokenizer spm.model --input corpus --output out/text >text.log 2>&1 || { cat text.log; fail "text dir run"; }
grep -qF "3 documents" text.log || { cat text.log; fail "summary lacks '3 documents'"; }
grep -qF "from 3 files" text.log || { cat text.log; fail "summary lacks 'from 3 files'"; }
check out/text spm.model 1 "${text_sources[@]}"

"$tool" --tokenizer spm.model --input docs.jsonl --text-field body --output out/jsonl >jsonl.log 2>&1 \
  || { cat jsonl.log; fail "jsonl run"; }
grep -qF "3 documents" jsonl.log || { cat jsonl.log; fail "summary lacks '3 documents'"; }
grep -qF "skipped 1 empty" jsonl.log || { cat jsonl.log; fail "summary lacks the skipped empty document"; }
check out/jsonl spm.model 1 "${jsonl_sources[@]}"

"$tool" --tokenizer spm.model --input docs.jsonl --input corpus --text-field body --append-eos false \
  --output out/both >both.log 2>&1 || { cat both.log; fail "two-input run"; }
check out/both spm.model 0 "${jsonl_sources[@]}" "${text_sources[@]}"
[ -z "$(ls out | grep -v -E '^(text|jsonl|both)\.(bin|idx)$')" ] || fail "stray files in out/: $(ls out)"

# ---- bad inputs: non-zero exit, message names the culprit, nothing left behind ----
printf '{"body": "fine"}\n{"body": "fine too"}\n{"body": "broken\n' >bad.jsonl
printf '{"body": "fine"}\n{"text": "wrong key"}\n' >nofield.jsonl
mkdir -p empty_dir && echo x >empty_dir/data.csv

expect_failure() {  # name, expected message text, args...
  local name=$1 text=$2; shift 2
  local prefix=out/$name
  if "$tool" "$@" --output "$prefix" >"$name.log" 2>&1; then cat "$name.log"; fail "$name: exit status 0"; fi
  grep -qF -- "$text" "$name.log" || { cat "$name.log"; fail "$name: message lacks '$text'"; }
  for f in "$prefix".bin "$prefix".idx "$prefix".bin.tmp "$prefix".idx.tmp; do
    [ ! -e "$f" ] || fail "$name: left $f behind"
  done
  echo "ok   $name: $(grep -m1 -F -- "$text" "$name.log")"
}
expect_failure missing_tokenizer "$work/nope.model" --tokenizer "$work/nope.model" --input corpus
expect_failure malformed_jsonl "bad.jsonl:3" --tokenizer spm.model --input bad.jsonl --text-field body
grep -qF "malformed JSON" malformed_jsonl.log || fail "malformed_jsonl: message lacks 'malformed JSON'"
expect_failure missing_field "nofield.jsonl:2" --tokenizer spm.model --input nofield.jsonl --text-field body
expect_failure missing_input "$work/no/such/corpus" --tokenizer spm.model --input "$work/no/such/corpus"
expect_failure no_input_files "no input files" --tokenizer spm.model --input empty_dir
expect_failure not_a_model "spm.vocab" --tokenizer spm.vocab --input corpus
expect_failure unknown_flag "--bogus" --tokenizer spm.model --input corpus --bogus 1

# A failed run over an existing dataset leaves the old one intact.
cp out/jsonl.bin jsonl.bin.saved && cp out/jsonl.idx jsonl.idx.saved
if "$tool" --tokenizer spm.model --input docs.jsonl bad.jsonl --text-field body --output out/jsonl >rerun.log 2>&1; then
  fail "rerun with bad.jsonl: exit status 0"
fi
grep -qF "bad.jsonl:3" rerun.log || { cat rerun.log; fail "rerun: message lacks 'bad.jsonl:3'"; }
cmp -s out/jsonl.bin jsonl.bin.saved && cmp -s out/jsonl.idx jsonl.idx.saved || fail "failed rerun changed out/jsonl"
[ ! -e out/jsonl.bin.tmp ] && [ ! -e out/jsonl.idx.tmp ] || fail "failed rerun left .tmp files"
check out/jsonl spm.model 1 "${jsonl_sources[@]}"
echo "ok   failed rerun kept the previous dataset"
echo "PASS tokenize_cli"
