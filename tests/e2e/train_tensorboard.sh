#!/usr/bin/env bash
# output.tensorboard: the event files under output.dir/tb/ read back through TensorBoard's own
# EventAccumulator (PyPI tensorboard, pinned by tools/setup-pyref.sh) with the values of metrics.jsonl
# (float32, as TensorBoard stores scalars), one value per step after a resume that redoes two steps (the
# resumed run's file starts with a session start that drops the first file's values of those steps).
set -euo pipefail
src=$1 build=$2
python=${IRIS_PYTHON:?IRIS_PYTHON must name the reference venv interpreter (tools/setup-pyref.sh)}
export OMP_NUM_THREADS=1
rm -rf run ckpt
args=(--model.config "$src/configs/models/tiny.json" --data.path "$build/data/sample_text" --train.seq_len 16
      --train.micro_batch 2 --train.log_every 100 --data.val_fraction 0.2 --eval.every 2 --eval.batches all
      --checkpoint.dir ckpt --checkpoint.every 2 --checkpoint.keep 0 --output.tensorboard true --output.dir run)
"$build/bin/iris-train" "${args[@]}" --train.steps 6 > run1.log 2>&1 || { tail -20 run1.log; exit 1; }
"$build/bin/iris-train" "${args[@]}" --train.steps 8 --checkpoint.load ckpt/step_00000004 > run2.log 2>&1 \
  || { tail -20 run2.log; exit 1; }
[ "$(ls run/tb | grep -c tfevents)" = 2 ] || { echo "FAIL: expected two event files"; ls -l run/tb; exit 1; }
"$python" - <<'PY'
import json
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
rows = [json.loads(l) for l in open("run/metrics.jsonl")]
assert [r["step"] for r in rows] == list(range(1, 9)), [r["step"] for r in rows]
acc = EventAccumulator("run/tb", size_guidance={"scalars": 0})
acc.Reload()
tags = acc.Tags()["scalars"]
for tag in ("loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "step_time_s", "tokens", "peak_memory_mib"):
    assert tag in tags, f"{tag} missing from the event files: {tags}"
    want = [(r["step"], r[tag]) for r in rows if r.get(tag) is not None]
    got = [(e.step, e.value) for e in acc.Scalars(tag)]
    assert [s for s, _ in got] == [s for s, _ in want], f"{tag}: steps {[s for s, _ in got]} vs metrics {[s for s, _ in want]}"
    for (step, value), (_, expected) in zip(got, want):
        assert value == float(np.float32(expected)), f"{tag} step {step}: event {value!r}, metrics.jsonl {expected!r}"
print(f"TensorBoard events equal metrics.jsonl for {len(tags)} scalars over steps 1-8 (resumed after step 4)")
PY
