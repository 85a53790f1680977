#!/usr/bin/env bash
# Pretraining on a blend with a validation split at every layout equals one rank: data.paths blends the
# sample corpus with the sample QA text (0.7/0.3), data.split 90,10 keeps a tenth of each dataset's
# documents for validation, and eval.every 2 writes val_loss; per-step losses and val_loss agree within
# relative 1e-5 and weights within 1e-4 for (1,1,2) (1,1,4) (2,1,1) (1,2,2) (2,2,2).
# Bad blends are refused before anything is written: the message names data.paths and the bad item.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json true
rm -rf data && mkdir data
"$build/bin/iris-tokenize" --tokenizer "$build/data/tokenizer.model" --text-field output \
  --input "$src/data/sample/sft/ophthalmology_qa.jsonl" --output data/qa_text --progress-seconds 0 >tokenize.log 2>&1 \
  || { cat tokenize.log; exit 1; }
common=(--model.config model.json --data.paths "0.7 $build/data/sample_text 0.3 data/qa_text" --data.split 90,10
        --eval.every 2 --eval.batches 3 --train.seq_len 16 --train.micro_batch 2 --train.steps 6 --optim.lr 1e-2
        --optim.warmup_steps 2 --optim.min_lr 1e-3 --train.log_every 100 --output.save_weights true
        --parallel.bucket_mb 0.01)
fail=0
rm -rf ref
"$build/bin/iris-train" "${common[@]}" --train.grad_accum 4 --output.dir ref >ref.log 2>&1 || { tail -20 ref.log; exit 1; }
grep -q "blend of 2 datasets" ref.log || { echo "FAIL: the startup log does not describe the blend"; fail=1; }
/usr/bin/python3 - ref/metrics.jsonl <<'PY' || fail=1
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
assert [x["step"] for x in m if "val_loss" in x] == [2, 4, 6], "val_loss not at steps 2, 4, 6"
PY
for layout in 1,1,2 1,1,4 2,1,1 1,2,2 2,2,2; do
  IFS=, read -r tp pp dp <<<"$layout"
  run_and_compare ref "run_${tp}${pp}${dp}" "$tp" "$pp" "$dp" || fail=1
done
# Bad input: odd item count, a weight that is not a number, a split with no validation documents.
expect_refusal() {  # text, args...
  local text=$1; shift
  rm -rf bad
  if "$build/bin/iris-train" --model.config model.json --train.steps 1 --output.dir bad "$@" >bad.log 2>&1; then
    echo "FAIL: accepted $*"; fail=1; return; fi
  grep -qF -- "$text" bad.log || { echo "FAIL: message lacks '$text'"; cat bad.log; fail=1; }
  [ ! -e bad ] || { echo "FAIL: $* created output.dir"; fail=1; }
}
expect_refusal 'data.paths "0.7 data/qa_text 0.3"' --data.paths "0.7 data/qa_text 0.3"
expect_refusal '"heavy" should be a positive weight' --data.paths "heavy data/qa_text 1 data/qa_text"
expect_refusal 'leaves no validation documents' --data.path data/qa_text --data.split 100,0.01
[ $fail = 0 ] && echo "PASS blend_eval_layouts"
exit $fail
