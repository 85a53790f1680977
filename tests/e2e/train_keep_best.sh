#!/usr/bin/env bash
# checkpoint.keep 1 + keep_best 1 (val_loss): the checkpoint with the lowest val_loss survives next to the
# newest one, `best` points at it, across a requeue (a second run resuming from `latest`), and
# iris-convert iris-to-hf takes ROOT/best. The learning rate is high enough that the validation loss
# rises again after its minimum, so the best is not simply the newest.
set -euo pipefail
src=$1 build=$2
export OMP_NUM_THREADS=1
rm -rf run ckpt hf
args=(--model.config "$src/configs/models/tiny.json" --data.path "$build/data/sample_text" --train.seq_len 16
      --train.micro_batch 4 --train.log_every 100 --data.val_fraction 0.1 --eval.every 2 --eval.batches all
      --optim.schedule constant --optim.lr 3e-2 --optim.warmup_steps 0
      --checkpoint.dir ckpt --checkpoint.every 2 --checkpoint.keep 1 --checkpoint.keep_best 1 --output.dir run)
"$build/bin/iris-train" "${args[@]}" --train.steps 12 > run1.log 2>&1 || { tail -20 run1.log; exit 1; }
"$build/bin/iris-train" "${args[@]}" --train.steps 18 --checkpoint.load auto > run2.log 2>&1 || { tail -20 run2.log; exit 1; }
grep -q "resum" run2.log || { echo "FAIL: the second run did not resume"; tail -20 run2.log; exit 1; }
/usr/bin/python3 - <<'PY'
import json, os
rows = [json.loads(l) for l in open("run/metrics.jsonl")]
val = {r["step"]: r["val_loss"] for r in rows if r.get("val_loss") is not None}
assert sorted(val) == list(range(2, 19, 2)), sorted(val)
best_step = min(val, key=lambda s: (val[s], s))
assert best_step < 18, f"the validation loss fell to the end ({val}); the test needs a best that is not the newest"
kept = sorted(d for d in os.listdir("ckpt") if d.startswith("step_"))
want = sorted({f"step_{best_step:08d}", "step_00000018"})
assert kept == want, f"kept {kept}, expected {want} (val_loss {val})"
best = open("ckpt/best").read().strip()
assert best == f"step_{best_step:08d}", f"best points at {best}, lowest val_loss is step {best_step}"
manifest = json.load(open(f"ckpt/{best}/manifest.json"))
assert abs(manifest["val_loss"] - val[best_step]) <= 1e-12 * max(1, abs(val[best_step])), manifest["val_loss"]
print(f"best checkpoint step {best_step} (val_loss {val[best_step]:.4f}) kept beside the newest, step 18; "
      f"val_loss {min(val.values()):.4f}..{max(val.values()):.4f}")
PY
"$build/bin/iris-convert" iris-to-hf --checkpoint ckpt/best --out hf > convert.log 2>&1 || { tail -20 convert.log; exit 1; }
[ -f hf/config.json ] && ls hf/*.safetensors > /dev/null || { echo "FAIL: no HF export from ckpt/best"; exit 1; }
echo "iris-convert iris-to-hf --checkpoint ckpt/best wrote $(ls hf)"
