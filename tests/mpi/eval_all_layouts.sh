#!/usr/bin/env bash
# data.val_fraction + eval.batches=all at every layout equals one rank: a seeded, shuffled tenth of the
# documents (SFT: samples) is held out, the whole of it is scored token-weighted, and val_loss agrees
# within relative 1e-6 for (tp,pp,dp) = (1,1,2) (2,1,1) (1,2,1), pretraining and packed SFT. The learning
# rate is 1e-12 so the weights stay those of the initialisation and val_loss measures the evaluation alone
# (a layout's training drift, compared at 1e-5 elsewhere, would otherwise dominate). The held-out set is the
# same after a resume: the resumed run's val_loss at step 2 equals the uninterrupted run's.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
mkdir -p data
tokenize_sample_sft data/sft
fail=0
for task in pretrain sft; do
  data=$build/data/sample_text seq=32
  [ $task = sft ] && data=data/sft seq=256  # an SFT row must reach the answer tokens
  common=(--model.config model.json --data.path "$data" --train.task $task --train.seq_len $seq --train.micro_batch 2
          --train.steps 2 --optim.lr 1e-12 --optim.min_lr 0 --optim.warmup_steps 0 --train.log_every 100
          --data.val_fraction 0.1 --eval.every 1 --eval.batches all)
  run_iris "${task}_ref" 1 "${common[@]}" --checkpoint.dir "${task}_ckpt" --checkpoint.every 1 --checkpoint.keep 0 || continue
  grep -q "validation data" "${task}_ref.log" || { echo "FAIL: no validation data described"; fail=1; }
  for layout in 1,1,2 2,1,1 1,2,1; do
    IFS=, read -r tp pp dp <<<"$layout"
    run_iris "${task}_${tp}${pp}${dp}" $((tp * pp * dp)) "${common[@]}" --parallel.tp "$tp" --parallel.pp "$pp" || continue
  done
  # A requeue after step 1 evaluates the same held-out documents at step 2.
  run_iris "${task}_resumed" 1 "${common[@]}" --checkpoint.dir "${task}_resume_ckpt" --checkpoint.load "${task}_ckpt/step_00000001" || true
  "${IRIS_PYTHON:-/usr/bin/python3}" - "$task" <<'PY' || fail=1
import json, sys
task = sys.argv[1]
def val(run):
    return {r["step"]: r["val_loss"] for r in map(json.loads, open(f"{run}/metrics.jsonl")) if "val_loss" in r}
ref = val(f"{task}_ref")
assert sorted(ref) == [1, 2], ref
for run in ("112", "211", "121", "resumed"):
    got = val(f"{task}_{run}")
    for step, want in ref.items():
        if run == "resumed" and step == 1: continue  # resumed after step 1
        err = abs(got[step] - want) / abs(want)
        assert err <= 1e-6, f"{task} {run} step {step}: val_loss {got[step]!r} vs one rank {want!r} (rel {err:.2e})"
print(f"{task}: val_loss over the whole held-out set {ref[1]:.6f} equal at dp 2, tp 2, pp 2 and after a resume (rel 1e-6)")
PY
done
[ $fail = 0 ] && echo "PASS eval_all_layouts"
exit $fail
