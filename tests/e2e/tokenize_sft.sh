#!/usr/bin/env bash
# iris-tokenize at scale and for SFT, end to end on the sample tokenizer (BUILD/data/tokenizer.model):
#  - --workers 1 and 2 give byte-identical outputs; .gz and .zst inputs give the output of plain;
#  - --sft writes PREFIX.bin/.idx + PREFIX_loss_mask.bin/.idx, checked by an independent Python
#    reader (MMIDIDX parsed by hand, answers decoded with spm_decode);
#  - bad inputs fail with a message naming the culprit and leave no output; --skip-bad-lines counts;
#  - --inspect prints marked samples and writes nothing.
# Usage: bash tokenize_sft.sh SOURCE_DIR BUILD_DIR   (from a scratch directory)
set -euo pipefail
src=$1 build=$2
tool=$build/bin/iris-tokenize
model=$build/data/tokenizer.model
[ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }
[ -f "$model" ] || { echo "FAIL: $model missing (prepare_sample)"; exit 1; }
work=$PWD/tokenize_sft
rm -rf "$work"
mkdir -p "$work/out"
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
qa=$src/data/sample/sft/ophthalmology_qa.jsonl
chat=$src/data/sample/sft/ophthalmology_chat.jsonl
T=(--templates-dir "$src/configs/templates" --progress-seconds 0)

# ---- workers and compression: byte-identical outputs ----
# 40 copies of the QA file (3,120 records, several pipeline batches) as JSONL with a "text" field.
python3 - "$qa" >big.jsonl <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for k in range(40):
    for r in recs:
        print(json.dumps({"text": f"{k} {r['input']} {r['output']}"}))
PY
gzip -k big.jsonl && zstd -q -k big.jsonl
for w in 1 2; do
  "$tool" --tokenizer "$model" --input big.jsonl "$src/data/sample/corpus" --workers $w --output out/pre_w$w \
    "${T[@]}" >pre_w$w.log 2>&1 || { cat pre_w$w.log; fail "pretraining run, $w workers"; }
done
grep -qF "3152 documents" pre_w2.log || { cat pre_w2.log; fail "summary lacks '3152 documents'"; }
cmp out/pre_w1.bin out/pre_w2.bin && cmp out/pre_w1.idx out/pre_w2.idx || fail "--workers 1 and 2 differ"
for c in gz zst; do
  "$tool" --tokenizer "$model" --input big.jsonl.$c "$src/data/sample/corpus" --workers 2 --output out/pre_$c \
    "${T[@]}" >pre_$c.log 2>&1 || { cat pre_$c.log; fail "$c run"; }
  cmp out/pre_w1.bin out/pre_$c.bin && cmp out/pre_w1.idx out/pre_$c.idx || fail ".$c input differs from plain"
done
echo "ok   workers 1 = 2, .gz = .zst = plain"

# A corrupt compressed file is an error naming it.
head -c 3000 big.jsonl.gz >cut.jsonl.gz
if "$tool" --tokenizer "$model" --input cut.jsonl.gz --output out/cut "${T[@]}" >cut.log 2>&1; then fail "truncated .gz accepted"; fi
grep -qF "cut.jsonl.gz" cut.log || { cat cut.log; fail "truncated .gz: message lacks the file"; }
[ ! -e out/cut.bin ] && [ ! -e out/cut.bin.tmp ] || fail "truncated .gz left output behind"

# ---- SFT ----
for w in 1 2; do
  "$tool" --tokenizer "$model" --sft --template medalpaca --input "$qa" --workers $w --output out/qa_w$w \
    "${T[@]}" >qa_w$w.log 2>&1 || { cat qa_w$w.log; fail "sft run, $w workers"; }
done
for f in .bin .idx _loss_mask.bin _loss_mask.idx; do cmp out/qa_w1$f out/qa_w2$f || fail "sft --workers 1/2 differ ($f)"; done
grep -qF "78 samples" qa_w1.log || { cat qa_w1.log; fail "summary lacks '78 samples'"; }
"$tool" --tokenizer "$model" --sft --template llama2-chat --input "$chat" --output out/chat "${T[@]}" >chat.log 2>&1 \
  || { cat chat.log; fail "chat run"; }
"$tool" --tokenizer "$model" --sft --template medalpaca --train-on-inputs --input "$qa" --output out/qa_all \
  "${T[@]}" >qa_all.log 2>&1 || { cat qa_all.log; fail "train-on-inputs run"; }

cat >check_sft.py <<'PY'
"""Independent check of an SFT dataset: both .idx parsed as Megatron's _IndexReader does; the mask
is uint8 (dtype code 1) with the tokens' lengths; one BOS first and untrained; every trained run ends
with EOS; the trained text of sample i decodes (spm_decode) to its answers.
usage: check_sft.py PREFIX MODEL JSONL MODE   MODE = answers | all"""
import json, struct, subprocess, sys
import numpy as np
prefix, model, jsonl, mode = sys.argv[1:5]
BOS, EOS = 1, 2
def fail(m): sys.exit(f"FAIL {prefix}: {m}")
def read(p):
    idx = open(p + ".idx", "rb").read()
    if idx[:9] != b"MMIDIDX\x00\x00" or struct.unpack("<Q", idx[9:17])[0] != 1: fail(f"{p}.idx header")
    code = idx[17]; n, nd = struct.unpack("<QQ", idx[18:34])
    lengths = np.frombuffer(idx, np.int32, n, 34)
    ptrs = np.frombuffer(idx, np.int64, n, 34 + 4 * n)
    dt = {1: np.uint8, 8: np.uint16}[code]
    data = np.fromfile(p + ".bin", dt)
    size = np.dtype(dt).itemsize
    return code, [data[ptrs[i] // size: ptrs[i] // size + lengths[i]].astype(np.int64) for i in range(n)]
tcode, toks = read(prefix); mcode, masks = read(prefix + "_loss_mask")
if tcode != 8 or mcode != 1: fail(f"dtype codes {tcode}, {mcode}")
recs = [json.loads(l) for l in open(jsonl) if l.strip()]
if len(toks) != len(recs) or len(masks) != len(recs): fail(f"{len(toks)} / {len(masks)} sequences for {len(recs)} records")
def decode(ids):
    out = subprocess.run(["spm_decode", f"--model={model}", "--input_format=id"],
                         input=(" ".join(map(str, ids)) + "\n").encode(), capture_output=True, check=True)
    return out.stdout.decode()[:-1]
for i, (t, m, r) in enumerate(zip(toks, masks, recs)):
    if len(t) != len(m): fail(f"sample {i}: {len(t)} tokens, {len(m)} mask values")
    if not set(m.tolist()) <= {0, 1}: fail(f"sample {i}: mask values {set(m.tolist())}")
    if t[0] != BOS or (t == BOS).sum() != 1: fail(f"sample {i}: not exactly one BOS at the start")
    if m[0] != 0: fail(f"sample {i}: BOS trained")
    if t[-1] != EOS or m[-1] != 1: fail(f"sample {i}: does not end with a trained EOS")
    if mode == "all":
        if m[1:].min() != 1: fail(f"sample {i}: --train-on-inputs left prompt tokens untrained")
        continue
    answers = [r["output"]] if "output" in r else [x["content"] for x in r["messages"] if x["role"] == "assistant"]
    # Split the trained tokens into runs; each run is one answer followed by its EOS.
    runs, cur = [], []
    for tok, flag in zip(t.tolist(), m.tolist()):
        if flag: cur.append(tok)
        elif cur: runs.append(cur); cur = []
    if cur: runs.append(cur)
    if len(runs) != len(answers): fail(f"sample {i}: {len(runs)} trained runs for {len(answers)} answers")
    for run, answer in zip(runs, answers):
        if run[-1] != EOS or EOS in run[:-1]: fail(f"sample {i}: trained run not closed by one EOS")
        if decode(run[:-1]) != answer: fail(f"sample {i}: trained text {decode(run[:-1])!r} != answer {answer!r}")
    if m[0:len(t) - sum(map(len, runs))].sum() != 0 and m[:np.argmax(m)].sum() != 0: fail(f"sample {i}: prompt trained")
print(f"ok {prefix}: {len(toks)} samples")
PY
py() { /usr/bin/python3 check_sft.py "$@" || fail "check_sft.py $*"; }
py out/qa_w1 "$model" "$qa" answers
py out/chat "$model" "$chat" answers
py out/qa_all "$model" "$qa" all

# --seq-len: truncate keeps and counts, drop drops and counts.
"$tool" --tokenizer "$model" --sft --template medalpaca --input "$qa" --seq-len 130 --output out/trunc "${T[@]}" \
  >trunc.log 2>&1 || { cat trunc.log; fail "truncate run"; }
grep -qE "^  [1-9][0-9]* truncated to --seq-len" trunc.log || { cat trunc.log; fail "truncations not counted"; }
"$tool" --tokenizer "$model" --sft --template medalpaca --input "$qa" --seq-len 130 --sft.overflow drop \
  --output out/drop "${T[@]}" >drop.log 2>&1 || { cat drop.log; fail "drop run"; }
grep -qE "skipped [1-9][0-9]* longer than --seq-len" drop.log || { cat drop.log; fail "drops not counted"; }

# --inspect prints marked samples and writes nothing.
"$tool" --tokenizer "$model" --sft --template llama2-chat --input "$chat" --inspect 2 --output out/inspected \
  "${T[@]}" >inspect.log 2>&1 || { cat inspect.log; fail "inspect run"; }
grep -qF "⟦<s>[INST] <<SYS>>" inspect.log || { cat inspect.log; fail "inspect does not mark the prompt"; }
[ "$(grep -c '^---- ' inspect.log)" = 2 ] || fail "inspect did not print 2 samples"
ls out | grep -q inspected && fail "--inspect wrote files"

# ---- bad inputs ----
head -3 "$qa" >bad.jsonl; echo '{"instruction": "x", "input": "y", "output": "z"' >>bad.jsonl; head -5 "$qa" | tail -2 >>bad.jsonl
head -2 "$qa" >noout.jsonl; echo '{"instruction": "x", "input": "y"}' >>noout.jsonl
: >empty.jsonl
echo '{"user": [{"text": "Q: {question}"}], "assistant": [{"text": "{output}", "train": true}]}' >typo.json
expect_failure() {  # name, expected message text, args...
  local name=$1 text=$2; shift 2
  if "$tool" --tokenizer "$model" "$@" --output "out/$name" "${T[@]}" >"$name.log" 2>&1; then
    cat "$name.log"; fail "$name: exit status 0"; fi
  grep -qF -- "$text" "$name.log" || { cat "$name.log"; fail "$name: message lacks '$text'"; }
  for f in out/$name.{bin,idx} out/${name}_loss_mask.{bin,idx} out/$name*.tmp; do [ ! -e "$f" ] || fail "$name: left $f"; done
  echo "ok   $name: $(grep -m1 -F -- "$text" "$name.log")"
}
expect_failure malformed "bad.jsonl:4" --sft --template medalpaca --input bad.jsonl --workers 2
expect_failure missing_output "noout.jsonl:3: SFT record has no \"output\" field" --sft --template medalpaca --input noout.jsonl
expect_failure unknown_placeholder "typo.json" --sft --template "$work/typo.json" --input "$qa"
grep -qF "unknown placeholder {question}" unknown_placeholder.log || fail "unknown placeholder not named"
expect_failure empty_sft "no SFT sample left" --sft --template medalpaca --input empty.jsonl
expect_failure empty_text "contain no text" --input empty.jsonl

# A failed SFT run over an existing dataset leaves it intact.
cp out/qa_w1_loss_mask.bin saved_mask.bin
if "$tool" --tokenizer "$model" --sft --template medalpaca --input "$qa" noout.jsonl --output out/qa_w1 "${T[@]}" \
  >rerun.log 2>&1; then fail "rerun with a bad file: exit 0"; fi
cmp -s out/qa_w1_loss_mask.bin saved_mask.bin && cmp -s out/qa_w1.bin out/qa_w2.bin || fail "failed rerun changed out/qa_w1"
py out/qa_w1 "$model" "$qa" answers

# --skip-bad-lines: the good records are written, the bad ones counted by reason.
"$tool" --tokenizer "$model" --sft --template medalpaca --input bad.jsonl noout.jsonl --skip-bad-lines \
  --output out/skipped "${T[@]}" >skipped.log 2>&1 || { cat skipped.log; fail "skip-bad-lines run"; }
grep -qF "7 samples" skipped.log && grep -qF "skipped 1 bad lines: malformed JSON" skipped.log \
  && grep -qF "skipped 1 bad lines: no \"output\" field" skipped.log || { cat skipped.log; fail "skip summary"; }
echo "PASS tokenize_sft"
