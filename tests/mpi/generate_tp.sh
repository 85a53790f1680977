#!/usr/bin/env bash
# iris-generate under tensor parallelism and from checkpoints of another layout, on the random HF models of
# tests/hf/make_generate_reference.py (fixture hf_gen; a missing reference fails): for each model, greedy
# completion_ids of the four prompts (one batch) equal transformers generate() at --tp 1, at --tp 2
# (mpirun -np 2), and at --tp 1 from an Iris checkpoint written by iris-convert at tp 2 × pp 2; seeded
# sampling gives the same ids at tp 1 and tp 2, and from the checkpoint.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
ref=$build/hf_generate
[ -f "$ref/generate.json" ] || { echo "FAIL: no $ref/generate.json (the hf_generate_reference test makes it)"; exit 1; }
gen=$build/bin/iris-generate
py=/usr/bin/python3
fail=0
for case in untied tied llama3_rope; do
  "$py" - "$ref/generate.json" "$case" >"$case.prompts.jsonl" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))["cases"][sys.argv[2]]
for i, p in enumerate(ref["prompts"]):
    print(json.dumps({"id": f"p{i}", "prompt_ids": p}))
PY
  rm -rf "$case.ckpt"
  "$build/bin/iris-convert" hf-to-iris --hf "$ref/$case" --out "$case.ckpt" --tp 2 --pp 2 >"$case.convert.log" 2>&1 \
    || { cat "$case.convert.log"; exit 1; }
  common=(--input "$case.prompts.jsonl" --max-new-tokens 40 --batch 4)
  sampled=(--temperature 0.9 --top-k 20 --top-p 0.9 --seed 7)
  "$gen" --hf "$ref/$case" "${common[@]}" --output "$case.tp1.jsonl" >"$case.tp1.log" 2>&1
  mpi 2 "$gen" --hf "$ref/$case" "${common[@]}" --tp 2 --output "$case.tp2.jsonl" >"$case.tp2.log" 2>&1
  "$gen" --checkpoint "$case.ckpt" "${common[@]}" --output "$case.ckpt.jsonl" >"$case.ckpt.log" 2>&1
  "$gen" --hf "$ref/$case" "${common[@]}" "${sampled[@]}" --output "$case.s1.jsonl" >"$case.s1.log" 2>&1
  mpi 2 "$gen" --hf "$ref/$case" "${common[@]}" "${sampled[@]}" --tp 2 --output "$case.s2.jsonl" >"$case.s2.log" 2>&1
  "$gen" --checkpoint "$case.ckpt" "${common[@]}" "${sampled[@]}" --output "$case.sc.jsonl" >"$case.sc.log" 2>&1
  "$py" - "$ref/generate.json" "$case" <<'PY' || fail=1
import json, sys
ref = json.load(open(sys.argv[1]))["cases"][sys.argv[2]]
case = sys.argv[2]
def ids(name):
    rows = [json.loads(l) for l in open(f"{case}.{name}.jsonl")]
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(len(ref["prompts"]))], f"{name}: order {rows}"
    return [r["completion_ids"] for r in rows]
bad = 0
for name in ["tp1", "tp2", "ckpt"]:
    if ids(name) != ref["completions"]:
        print(f"FAIL {case} {name}: greedy ids differ from transformers generate()"); bad = 1
s1 = ids("s1")
for name in ["s2", "sc"]:
    if ids(name) != s1:
        print(f"FAIL {case} {name}: sampled ids differ from tp 1"); bad = 1
if s1 == ref["completions"]:
    print(f"FAIL {case}: sampling gave the greedy ids"); bad = 1
if not bad:
    print(f"ok   {case}: greedy = HF at tp 1, tp 2 and from a tp2×pp2 checkpoint; sampled equal at all three")
sys.exit(bad)
PY
done
exit $fail
