#!/usr/bin/env bash
# The trainer runs the optim.schedule it is given: the lr of every step in metrics.jsonl equals the
# schedule's closed form (1e-12) for cosine, linear, constant and wsd, with warm-up and decay from ratios.
set -euo pipefail
src=$1 build=$2
export OMP_NUM_THREADS=1
for schedule in cosine linear constant wsd; do
  rm -rf "$schedule"
  "$build/bin/iris-train" --model.config "$src/configs/models/tiny.json" --data.path "$build/data/sample_text" \
    --train.seq_len 16 --train.micro_batch 2 --train.steps 20 --train.log_every 100 --optim.schedule "$schedule" \
    --optim.lr 1e-3 --optim.min_lr 1e-4 --optim.warmup_ratio 0.1 --output.dir "$schedule" > "$schedule.log" 2>&1 \
    || { tail -20 "$schedule.log"; exit 1; }
done
/usr/bin/python3 - <<'PY'
import json, math
peak, floor, total = 1e-3, 1e-4, 20
W = math.ceil(0.1 * total)          # warmup_ratio 0.1: 2 steps
D = {"cosine": total - W, "linear": total - W, "constant": 0, "wsd": math.ceil(0.1 * total)}  # wsd: decay_ratio 0.1
for kind in ("cosine", "linear", "constant", "wsd"):
    H = total - W - D[kind] if kind == "wsd" else 0
    rows = [json.loads(l) for l in open(f"{kind}/metrics.jsonl")]
    assert [r["step"] for r in rows] == list(range(1, total + 1)), kind
    for r in rows:
        k = r["step"]
        if k <= W: want = peak * k / W
        elif kind == "constant" or k <= W + H: want = peak
        else:
            p = (k - W - H) / D[kind]
            want = floor + (peak - floor) * ((1 - p) if kind == "linear" else (1 + math.cos(math.pi * p)) / 2)
        assert abs(r["lr"] - want) <= 1e-12, f"{kind} step {k}: lr {r['lr']!r}, closed form {want!r}"
    print(f"{kind}: lr of all {total} steps equals the closed form")
PY
