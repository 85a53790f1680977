#!/usr/bin/env bash
# train.epochs: the run takes ceil(samples per epoch × epochs / global batch) optimizer steps, for
# pretraining windows and packed SFT rows, at dp 1 and 2 (the sample count the log prints is checked
# against the token count: (tokens − 1) // T windows), and a run stopped and resumed keeps that plan
# (same step count, bit-identical losses after the resume). train.steps with train.epochs is refused.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
tokenize_sample_sft sft
base=(--model.config model.json --train.micro_batch 2 --optim.lr 1e-2 --optim.warmup_ratio 0.1
      --train.log_every 100)
fail=0
# run name, epochs, expected task (pretrain|sft): checks the plan line against the data line and metrics.jsonl.
check_plan() {
  /usr/bin/python3 - "$1.log" "$1/metrics.jsonl" "$2" "$3" <<'PY'
import json, math, re, sys
log, metrics, epochs, task = open(sys.argv[1]).read(), sys.argv[2], float(sys.argv[3]), sys.argv[4]
if task == "pretrain":
    tokens, samples, T = map(int, re.search(r"pretrain data \S+: (\d+) tokens, (\d+) samples of (\d+) tokens", log).groups())
    assert samples == (tokens - 1) // T, f"{samples} samples from {tokens} tokens at T {T}"
else:
    samples = int(re.search(r"sft data \S+: \d+ SFT samples in (\d+) rows", log).group(1))
m = re.search(r"run plan: train.epochs = \S+: ceil\((\d+) samples per epoch × \S+ / global batch (\d+)\) = (\d+) steps", log)
assert m, "no run plan line"
planned, gb, steps = map(int, m.groups())
want = math.ceil(samples * epochs / gb)
rows = [json.loads(l) for l in open(metrics)]
assert planned == samples and steps == want, f"plan {m.group(0)!r}, expected {want} steps"
assert len(rows) == want and rows[-1]["step"] == want, f"{len(rows)} steps ran, expected {want}"
print(f"{sys.argv[1]}: {samples} samples × {epochs} / {gb} = {want} steps, all run")
PY
}
for dp in 1 2; do
  for accum in 1 2; do
    tag="dp${dp}_ga${accum}"
    run_iris "pre_$tag" "$dp" "${base[@]}" --data.path "$build/data/sample_text" --train.seq_len 16 \
      --train.grad_accum "$accum" \
      --train.epochs 0.015 && { check_plan "pre_$tag" 0.015 pretrain || fail=1; }
    run_iris "sft_$tag" "$dp" "${base[@]}" --data.path sft --train.task sft --train.seq_len 64 \
      --train.grad_accum "$accum" --train.epochs 0.5 && { check_plan "sft_$tag" 0.5 sft || fail=1; }
  done
done
# Resume at dp 2: stopped at the start of step 8 after the step-5 checkpoint, then resumed.
args=("${base[@]}" --data.path "$build/data/sample_text" --train.seq_len 16 --train.epochs 0.015 --output.save_weights true)
run_iris straight 2 "${args[@]}"
rm -rf ckpt first
if IRIS_FAULT=0:8:exit mpi 2 "$build/bin/iris-train" "${args[@]}" --checkpoint.dir ckpt --checkpoint.every 5 \
     --output.dir first >first.log 2>&1; then
  echo "FAIL: the interrupted run did not stop"; fail=1
fi
if run_iris resumed 2 "${args[@]}" --checkpoint.dir ckpt --checkpoint.load latest; then
  /usr/bin/python3 - straight/metrics.jsonl resumed/metrics.jsonl <<'PY' || fail=1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert b[0]["step"] == 6 and b[-1]["step"] == a[-1]["step"], f"resumed ran steps {b[0]['step']}..{b[-1]['step']}, straight 1..{a[-1]['step']}"
assert [r["loss"] for r in a[5:]] == [r["loss"] for r in b], "losses after the resume differ"
assert [r["lr"] for r in a[5:]] == [r["lr"] for r in b], "lr after the resume differs"
print(f"resumed: steps 6..{b[-1]['step']} of the same plan, losses and lr bit-identical")
PY
  grep -q "run plan: train.epochs = 0.015: .* = $(wc -l <straight/metrics.jsonl) steps" resumed.log \
    || { echo "FAIL: the resumed run's plan line differs"; fail=1; }
fi
# Both keys: refused with exit status 2, naming them.
if "$build/bin/iris-train" "${base[@]}" --data.path "$build/data/sample_text" --train.steps 5 --train.epochs 1 \
     --output.dir both >both.log 2>&1; then
  echo "FAIL: train.steps with train.epochs accepted"; fail=1
elif ! grep -q "train.steps and train.epochs are both given" both.log; then
  echo "FAIL: no message naming both keys"; cat both.log; fail=1
fi
exit $fail
