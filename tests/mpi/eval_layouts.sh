#!/usr/bin/env bash
# iris-eval at every layout equals one rank, on the random HF models of tests/eval/eval_models.py (fixture
# eval_models): mcq (generic sample) and ppl (--stride) at tp 2 (gqa model), pp 2 and dp 2 (tied_llama3: the
# tied embedding on both stages), tp 2 × pp 2, MedMCQA (choices sharing a row) at tp 2 and pp 2 × dp 2, and from an Iris checkpoint written by iris-convert at tp 2 × pp 2
# read at one rank; text and mcq --mode generate at dp 2 and tp 2. Tolerances: dp 2 batches the same
# requests together as one rank, so it must be bit-identical; tp and pp change fp32 summation order only:
# every choice's log-likelihood within 1e-5, ppl loss within 1e-6, acc / acc_norm and every prediction
# identical, generated texts identical.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
models=$build/eval_models
[ -f "$models/gqa/config.json" ] || { echo "FAIL: no $models/gqa (the eval_models test makes it)"; exit 1; }
ev=$build/bin/iris-eval
py=/usr/bin/python3
fail=0
mcq_in=$src/data/sample/eval/generic.jsonl
text_in=$src/data/sample/corpus/$(ls "$src/data/sample/corpus" | head -1)
run_eval() {  # name ranks args...
  local name=$1 n=$2; shift 2
  rm -rf "$name"
  if ! mpi "$n" "$ev" "$@" --output "$name" >"$name.log" 2>&1; then echo "FAIL $name"; tail -20 "$name.log"; fail=1; fi
}
compare() {  # kind baseline other exact(0|1)
  "$py" - "$@" <<'PY' || fail=1
import json, sys
kind, a, b, exact = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
sa, sb = json.load(open(f"{a}/summary.json")), json.load(open(f"{b}/summary.json"))
ia = [json.loads(l) for l in open(f"{a}/items.jsonl")]
ib = [json.loads(l) for l in open(f"{b}/items.jsonl")]
bad = []
assert len(ia) == len(ib) > 0, (len(ia), len(ib))
if kind == "mcq":
    for x, y in zip(ia, ib):
        for la, lb in zip(x["loglikelihoods"], y["loglikelihoods"]):
            if (la != lb) if exact else abs(la - lb) > 1e-5:
                bad.append(f"item {x['doc_index']}: {la} vs {lb}")
        for k in ("pred", "pred_norm", "acc", "acc_norm"):
            if x[k] != y[k]:
                bad.append(f"item {x['doc_index']}: {k} {x[k]} vs {y[k]}")
    for k in ("acc", "acc_norm", "acc_stderr", "acc_norm_stderr", "n"):
        if sa[k] != sb[k]:
            bad.append(f"summary {k}: {sa[k]} vs {sb[k]}")
elif kind == "ppl":
    if sa["tokens"] != sb["tokens"]:
        bad.append(f"tokens {sa['tokens']} vs {sb['tokens']}")
    if (sa["loss"] != sb["loss"]) if exact else abs(sa["loss"] - sb["loss"]) > 1e-6:
        bad.append(f"loss {sa['loss']} vs {sb['loss']}")
else:  # text / generate: the same answers and scores
    for x, y in zip(ia, ib):
        if x["generated"] != y["generated"]:
            bad.append(f"{x['id']}: {x['generated']!r} vs {y['generated']!r}")
    for k in ("rougeL", "bleu", "acc"):
        if k in sa and sa[k] != sb[k]:
            bad.append(f"summary {k}: {sa[k]} vs {sb[k]}")
for m in bad[:10]:
    print(f"FAIL {b} vs {a}: {m}")
print(("FAIL" if bad else "ok"), b, "vs", a)
sys.exit(1 if bad else 0)
PY
}
for model in gqa tied_llama3; do
  hf=$models/$model
  mcq=(mcq --hf "$hf" --format generic --input "$mcq_in" --batch 3)
  ppl=(ppl --hf "$hf" --input "$text_in" --tokenizer "$hf/tokenizer.model" --seq-len 64 --stride 24 --batch 3)
  run_eval "$model.mcq.1" 1 "${mcq[@]}"
  run_eval "$model.ppl.1" 1 "${ppl[@]}"
  run_eval "$model.mcq.dp2" 2 "${mcq[@]}"
  run_eval "$model.ppl.dp2" 2 "${ppl[@]}"
  compare mcq "$model.mcq.1" "$model.mcq.dp2" 1
  compare ppl "$model.ppl.1" "$model.ppl.dp2" 1
  run_eval "$model.mcq.pp2" 2 "${mcq[@]}" --pp 2
  run_eval "$model.ppl.pp2" 2 "${ppl[@]}" --pp 2
  compare mcq "$model.mcq.1" "$model.mcq.pp2" 0
  compare ppl "$model.ppl.1" "$model.ppl.pp2" 0
  if [ "$model" = gqa ]; then  # 2 KV heads: tp 2 fits (tied_llama3 has one KV head)
    run_eval "$model.mcq.tp2" 2 "${mcq[@]}" --tp 2
    run_eval "$model.ppl.tp2" 2 "${ppl[@]}" --tp 2
    compare mcq "$model.mcq.1" "$model.mcq.tp2" 0
    compare ppl "$model.ppl.1" "$model.ppl.tp2" 0
    run_eval "$model.mcq.tp2pp2" 4 "${mcq[@]}" --tp 2 --pp 2
    compare mcq "$model.mcq.1" "$model.mcq.tp2pp2" 0
    # MedMCQA: the four choices share one row (the same input), scored from vocab-parallel logits at tp 2.
    med=(mcq --hf "$hf" --format medmcqa --input "$src/data/sample/eval/medmcqa.jsonl" --batch 3)
    run_eval "$model.med.1" 1 "${med[@]}"
    run_eval "$model.med.tp2" 2 "${med[@]}" --tp 2
    run_eval "$model.med.pp2dp2" 4 "${med[@]}" --pp 2
    compare mcq "$model.med.1" "$model.med.tp2" 0
    compare mcq "$model.med.1" "$model.med.pp2dp2" 0
    rm -rf "$model.ckpt"
    "$build/bin/iris-convert" hf-to-iris --hf "$hf" --out "$model.ckpt" --tp 2 --pp 2 >"$model.convert.log" 2>&1 \
      || { cat "$model.convert.log"; exit 1; }
    run_eval "$model.mcq.ckpt" 1 mcq --checkpoint "$model.ckpt" --tokenizer "$hf/tokenizer.model" --format generic \
      --input "$mcq_in" --batch 3
    compare mcq "$model.mcq.1" "$model.mcq.ckpt" 0
    text=(text --hf "$hf" --tokenizer "$hf/tokenizer.model" --input "$src/data/sample/eval/essays.jsonl"
          --max-new-tokens 16 --scorer "")
    run_eval "$model.text.1" 1 "${text[@]}"
    run_eval "$model.text.dp2" 2 "${text[@]}"
    run_eval "$model.text.tp2" 2 "${text[@]}" --tp 2
    compare text "$model.text.1" "$model.text.dp2" 1
    compare text "$model.text.1" "$model.text.tp2" 0
    gen=(mcq --hf "$hf" --format medmcqa --input "$src/data/sample/eval/medmcqa.jsonl" --mode generate
         --max-new-tokens 6)
    run_eval "$model.gen.1" 1 "${gen[@]}"
    run_eval "$model.gen.dp2" 2 "${gen[@]}"
    compare text "$model.gen.1" "$model.gen.dp2" 1
  fi
done
[ "$fail" = 0 ] && echo "eval layouts: all equal" || { echo "eval layouts: FAILED"; exit 1; }
