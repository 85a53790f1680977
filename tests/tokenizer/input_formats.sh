#!/usr/bin/env bash
# JSON array, CSV and nested-field inputs through iris-tokenize (Llama 3's byte-level tokenizer, so
# documents decode back to their exact text) give the same records as Python's json / csv modules
# read from the same files: quoted commas, doubled quotes, CRLF and LF line breaks inside fields,
# a pretty-printed array, a PubMedQA-style "context.contexts" list. Without a field mapping a CSV or
# JSON file is refused with the flag to add; malformed files are named by FILE:LINE (record N); no
# failed run leaves an .idx behind.
# Usage: bash input_formats.sh SOURCE_DIR BUILD_DIR REF_DIR PYTHON   (from a scratch directory)
set -euo pipefail
src=$1 build=$2 ref=$3 py=$4
tool=$build/bin/iris-tokenize
work=$PWD/input_formats
rm -rf "$work" && mkdir -p "$work/out" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
tk=(--tokenizer "$ref/llama3/tokenizer.model" --progress-seconds 0)

"$py" - <<'PY'
import csv, json, random
random.seed(5)
words = ["eye", "retina", "IOP, mmHg", 'the "optic" disc', "glaucoma\r\nsecond line", "line\nbreak", "caf\u00e9",
         "\u773c\u79d1", "a,b,,c", '""', "trailing space ", " leading", "tab\tsep", "\U0001F441\ufe0f"]
def text(n):
    return " ".join(random.choice(words) for _ in range(n))
rows = [{"question": text(3), "answer": text(6), "note": random.choice(["", "x", "y,z"])} for _ in range(40)]
with open("qa.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=["question", "answer", "note"])
    w.writeheader()
    w.writerows(rows)
with open("qa_lf.csv", "w", newline="", encoding="utf-8") as f:  # LF line ends, everything quoted
    w = csv.DictWriter(f, fieldnames=["question", "answer", "note"], lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writeheader()
    w.writerows(rows)
records = [{"text": text(8), "meta": {"id": i, "tags": ["a", "b]"]}} for i in range(30)]
json.dump(records, open("docs.json", "w", encoding="utf-8"), indent=2, ensure_ascii=False)
json.dump(records, open("docs_compact.json", "w", encoding="utf-8"))
pubmed = [{"QUESTION": text(3), "context": {"contexts": [text(5), text(7)], "labels": ["BACKGROUND", "METHODS"]},
           "long_answer": text(9), "final_decision": random.choice(["yes", "no", "maybe"])} for _ in range(12)]
json.dump(pubmed, open("pubmedqa.json", "w", encoding="utf-8"), indent=1)
PY

cat >check.py <<'PY'
# check.py PREFIX KIND FILE FIELD: decodes every document of PREFIX (dropping BOS/EOS) and compares it
# with FIELD of each record as Python's csv.DictReader / json.load read FILE (dotted FIELD: nested;
# a list is joined with "\n\n"), in order.
import base64, csv, json, struct, sys
import numpy as np
prefix, kind, path, field = sys.argv[1:5]
ranks = {}
for line in open(sys.argv[5] + "/llama3/tokenizer.model", "rb"):
    if line.strip():
        t, r = line.split()
        ranks[base64.b64decode(t)] = int(r)
def want_records():
    if kind == "csv":
        return list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    return json.load(open(path, encoding="utf-8"))
def value(record):
    if field in record:
        v = record[field]
    else:
        v = record
        for part in field.split("."):
            v = v[part]
    return "\n\n".join(v) if isinstance(v, list) else v
want = [value(r) for r in want_records()]
idx = open(prefix + ".idx", "rb").read()
n = struct.unpack_from("<Q", idx, 18)[0]
lengths = np.frombuffer(idx, np.int32, n, 34)
pointers = np.frombuffer(idx, np.int64, n, 34 + 4 * n)
data = np.fromfile(prefix + ".bin", np.int32)
token_bytes = {r: b for b, r in ranks.items()}
got = []
for p, l in zip(pointers, lengths):
    ids = data[p // 4: p // 4 + l].tolist()
    assert ids[0] == 128000 and ids[-1] == 128001
    got.append(b"".join(token_bytes[i] for i in ids[1:-1]).decode("utf-8"))
assert len(got) == len(want), f"{len(got)} documents, Python reads {len(want)} records"
for i, (g, w) in enumerate(zip(got, want)):
    assert g == w, f"record {i + 1}: {g!r} != {w!r}"
print(f"check: {len(got)} records of {path} equal Python's {kind} reading ({field})")
PY

run() { local out=$1; shift; "$tool" "${tk[@]}" --output "out/$out" "$@" >"log_$out.txt" 2>&1 || { cat "log_$out.txt"; fail "$out"; }; }
run csv --input qa.csv --text-field answer --workers 2
"$py" check.py out/csv csv qa.csv answer "$ref" || fail "CSV"
run csv_lf --input qa_lf.csv --text-field question
"$py" check.py out/csv_lf csv qa_lf.csv question "$ref" || fail "CSV with LF and QUOTE_ALL"
# Python's leniencies: a quote inside an unquoted field is kept, text after a closing quote joins the field.
printf 'k,v\na"b,"x"y\n"multi\r\nline",plain\n\n"q",end\n' >odd.csv
run odd_k --input odd.csv --text-field k
"$py" check.py out/odd_k csv odd.csv k "$ref" || fail "odd CSV (k)"
run odd_v --input odd.csv --text-field v
"$py" check.py out/odd_v csv odd.csv v "$ref" || fail "odd CSV (v)"
run arr --input docs.json --workers 2
"$py" check.py out/arr json docs.json text "$ref" || fail "JSON array (indented)"
run arr_compact --input docs_compact.json
cmp out/arr.bin out/arr_compact.bin || fail "indented and compact arrays differ"
run pubmed --input pubmedqa.json --text-field context.contexts
"$py" check.py out/pubmed json pubmedqa.json context.contexts "$ref" || fail "nested field"
# SFT from CSV columns.
run sft_csv --input qa.csv --sft --template llama3-chat --templates-dir "$src/configs/templates" \
  --sft.instruction-field question --sft.output-field answer --sft.input-field none
grep -q "40 samples" log_sft_csv.txt || { cat log_sft_csv.txt; fail "SFT from CSV"; }

# Refusals and malformed files: exit 2, the message names the place and the fix, no output left.
expect_fail() {
  local name=$1 want=$2; shift 2
  set +e
  "$tool" "${tk[@]}" --output out/$name "$@" >log_$name.txt 2>&1
  local rc=$?
  set -e
  [ $rc -eq 2 ] || { cat log_$name.txt; fail "$name: exit status $rc, expected 2"; }
  grep -qF -- "$want" log_$name.txt || { cat log_$name.txt; fail "$name: message lacks '$want'"; }
  [ ! -e out/$name.idx ] && [ ! -e out/$name.bin ] && ! ls out/$name*.tmp >/dev/null 2>&1 || fail "$name: output left"
}
expect_fail csv_unmapped 'qa.csv:2 (record 1): no "text" column (columns: question, answer, note; choose the column with --text-field)' --input qa.csv
expect_fail json_unmapped 'choose the field with --text-field' --input pubmedqa.json
expect_fail sft_unmapped 'choose field names with --sft.instruction-field' --input qa.csv --sft --template llama3-chat \
  --templates-dir "$src/configs/templates"
head -c 300 docs.json >truncated.json
expect_fail truncated "truncated.json:" --input truncated.json
grep -q "not closed\|malformed JSON" log_truncated.txt || { cat log_truncated.txt; fail "truncated array message"; }
printf 'a,b\n1,2\n3,4,5\n' >ragged.csv
expect_fail ragged 'ragged.csv:3 (record 2): 3 fields, but the header has 2 columns' --input ragged.csv --text-field a
printf '[{"text": "ok"},\n {"text": oops}]\n' >bad.json
expect_fail bad_json 'bad.json:2 (record 2): malformed JSON array element' --input bad.json
echo PASS
