#!/usr/bin/env bash
# tools/iris-plot draws one run (requeued once: its restart is marked) and two runs overlaid into PNGs:
# each a valid PNG (signature, IHDR chunk) of the requested size. A directory without metrics.jsonl is
# refused naming the file.
set -euo pipefail
src=$1 build=$2
export OMP_NUM_THREADS=1
rm -rf a b ckpt ./*.png
args=(--model.config "$src/configs/models/tiny.json" --data.path "$build/data/sample_text" --train.seq_len 16
      --train.micro_batch 2 --train.log_every 100 --data.split 90,10 --eval.every 2)
"$build/bin/iris-train" "${args[@]}" --train.steps 4 --checkpoint.dir ckpt --output.dir a > a1.log 2>&1 || { tail a1.log; exit 1; }
"$build/bin/iris-train" "${args[@]}" --train.steps 8 --checkpoint.dir ckpt --checkpoint.load auto --output.dir a \
  > a2.log 2>&1 || { tail a2.log; exit 1; }
"$build/bin/iris-train" "${args[@]}" --train.steps 8 --optim.lr 3e-3 --output.dir b > b.log 2>&1 || { tail b.log; exit 1; }
"$src/tools/iris-plot" a
"$src/tools/iris-plot" a b --output both.png --size 800,900
/usr/bin/python3 - <<'PY'
import struct
for path, size in (("a/loss.png", (1000, 1100)), ("both.png", (800, 900))):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, f"{path}: no IHDR chunk first"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == size, f"{path}: {width}x{height}, expected {size}"
    assert len(data) > 5000, f"{path}: {len(data)} bytes, too small to hold the plots"
    print(f"{path}: PNG {width}x{height}, {len(data)} bytes")
PY
mkdir -p empty
if "$src/tools/iris-plot" empty > bad.log 2>&1; then echo "FAIL: a directory without metrics.jsonl was accepted"; exit 1; fi
grep -q "empty/metrics.jsonl: no such file" bad.log || { cat bad.log; exit 1; }
echo "PASS plot_runs"
