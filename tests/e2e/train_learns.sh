#!/usr/bin/env bash
# Learning: the quickstart run (configs/train/tiny-cpu.ini, its own step count) on the bundled sample
# must bring the loss from about ln(V) = ln(2048) ≈ 7.62 to a mean over the last 10 steps below 5.8, and a second run with the
# same seed must give bit-identical per-step loss, grad_norm and lr.
set -euo pipefail
src=$1 build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$src"
for run in a b; do
  rm -rf "$build/e2e/train_learns/$run"
  "$build/bin/iris-train" --config configs/train/tiny-cpu.ini --data.path "$build/data/sample_text" \
    --data.tokenizer "$build/data/tokenizer.model" --output.dir "$build/e2e/train_learns/$run" --train.log_every 50
done
/usr/bin/python3 - "$build/e2e/train_learns" <<'PY'
import json, math, sys
d = sys.argv[1]
runs = [[json.loads(l) for l in open(f"{d}/{r}/metrics.jsonl")] for r in "ab"]
a, b = runs
assert len(a) == 200 and len(b) == 200, (len(a), len(b))
first, last = a[0]["loss"], sum(m["loss"] for m in a[-10:]) / 10
print(f"first loss {first:.4f} (ln 2048 = {math.log(2048):.4f}), mean of last 10: {last:.4f}")
assert abs(first - math.log(2048)) < 0.5, f"initial loss {first} is not near ln(V)"
assert last < 5.8, f"loss did not fall below 5.8: {last}"
for x, y in zip(a, b):
    for k in ("loss", "grad_norm", "lr"):
        assert x[k] == y[k], f"step {x['step']}: {k} differs between identical runs: {x[k]!r} vs {y[k]!r}"
for k in ("step", "loss", "lr", "grad_norm", "tokens_per_s"):
    assert k in a[0], f"metrics.jsonl lacks {k}"
print("two runs with seed 1234 are bit-identical over 200 steps")
PY
