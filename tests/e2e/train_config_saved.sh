#!/usr/bin/env bash
# iris-train saves the resolved configuration as OUTPUT/config.ini: values from the --config file,
# command-line overrides on top of them, and defaults for keys given nowhere. The saved file is itself
# a valid run config: started from it, a second run writes the same config.ini and the same metrics
# (loss, grad_norm, lr bit-identical), so a run can be repeated from its outputs alone.
set -euo pipefail
src=$1 build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$PWD
rm -rf a b
cd "$src"   # tiny-cpu.ini names its model relative to the checkout
"$build/bin/iris-train" --config configs/train/tiny-cpu.ini --data.path "$build/data/sample_text" \
  --data.tokenizer "$build/data/tokenizer.model" --output.dir "$work/a" --train.steps 3 --train.seq_len 32 \
  --optim.lr 0.004 --parallel.bucket_mb 2.5 > "$work/a.log" 2>&1 || { tail -20 "$work/a.log"; exit 1; }
cd "$work"
/usr/bin/python3 - a/config.ini "$build" <<'PY'
import configparser, sys
ini = configparser.ConfigParser()
assert ini.read(sys.argv[1]), f"no {sys.argv[1]}"
def val(key):
    sec, name = key.split(".")
    return ini[sec][name]
expected = {
    "train.micro_batch": "8", "train.seed": "1234", "optim.warmup_steps": "20", "optim.min_lr": "0.0006",  # the INI file
    "train.steps": "3", "train.seq_len": "32", "optim.lr": "0.004", "parallel.bucket_mb": "2.5",        # command line
    "data.path": sys.argv[2] + "/data/sample_text", "output.dir": None,
    "optim.eps": "1e-08", "optim.decay_steps": "0", "parallel.stage_layers": "", "checkpoint.dir": "",  # defaults
}
for key, want in expected.items():
    got = val(key)
    if want is not None:
        assert got == want, f"config.ini {key} = {got!r}, expected {want!r}"
print("config.ini holds the INI values, the overrides and the defaults")
PY
# The saved file reproduces the run (it names the first run's output.dir: override only that).
(cd "$src" && "$build/bin/iris-train" --config "$work/a/config.ini" --output.dir "$work/b") > b.log 2>&1 \
  || { tail -20 b.log; exit 1; }
diff <(grep -v '^dir = ' a/config.ini) <(grep -v '^dir = ' b/config.ini) || { echo "FAIL: config.ini differs"; exit 1; }
/usr/bin/python3 - a/metrics.jsonl b/metrics.jsonl <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 3, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("loss", "grad_norm", "lr"):
        assert x[k] == y[k], f"step {x['step']}: {k} {x[k]!r} vs {y[k]!r}"
print("a run started from the saved config.ini repeats the first one bit for bit")
PY
