#!/usr/bin/env bash
# iris-bench end to end on the CPU with a tiny model: both sides run (iris-train, and the PyTorch step
# under the reference venv, whose torch 1.13 lacks SDPA, fused AdamW and torch.compile, so every
# fallback runs), the table prints, and results.json holds positive tokens/s for both, the ratio, and
# MFUs over the given peak (PyTorch's from Iris's formula: the two MFUs stand as their tokens/s).
# A second run (Iris only, no peak) must report MFU unknown. A third drives a stand-in iris-train for
# llama2-7b on an H200: --recompute auto must run once, with the planner's choice (none fits on 141 GB),
# report device_peak_memory_mib, take the peak from iris-train's own MFU, and print the llama2-7b MFU
# target. Speed itself is never asserted. (bench_checks.sh tests refusals and INVALID runs.)
# Skips (77) without the Python reference environment (tools/setup-pyref.sh).
set -euo pipefail
src=$1 build=$2
python=${IRIS_PYTHON:-$src/.venv-ref/bin/python}
if ! [ -x "$python" ] || ! "$python" -c 'import torch, transformers' 2>/dev/null; then
  echo "SKIP: no Python with torch + transformers at '$python' (run tools/setup-pyref.sh, configure with -DIRIS_PYTHON=...)"
  exit 77
fi
source "$src/tests/mpi/common.bash"  # the MPI-as-root settings and the tiny test model
rm -rf out out_iris
write_tiny_model tiny.json false
# Enough tokens per step (1024) and a learning rate that make the tiny model's loss fall over 4 steps:
# a run whose loss does not fall is INVALID and reports no speed.
common=(--models "$PWD/tiny.json" --seq 64 --micro-batch 4 --grad-accum 4 --steps 3 --warmup-steps 1
        --device cpu --threads 1 --python "$python" --iris-arg optim.lr=1e-2)
"$build/bin/iris-bench" "${common[@]}" --peak-tflops 0.05 --out out > bench.log 2>&1 ||
  { echo "FAIL: iris-bench exited $?"; cat bench.log; exit 1; }
cat bench.log
grep -Eq "^  Iris / PyTorch tokens/s: [0-9]+\.[0-9]+" bench.log || { echo "FAIL: no ratio line in the table"; exit 1; }
grep -q "target Iris/PyTorch tokens/s" bench.log && { echo "FAIL: a ratio target for a model that is not llama3.2-1b"; exit 1; }
"$build/bin/iris-bench" "${common[@]}" --iris-only --out out_iris > bench_iris.log 2>&1 ||
  { echo "FAIL: iris-bench --iris-only exited $?"; cat bench_iris.log; exit 1; }
grep -Eq "^  Iris .* unknown " bench_iris.log || { echo "FAIL: MFU not unknown without a peak"; cat bench_iris.log; exit 1; }

cat >fake-iris-train <<'SH'
#!/usr/bin/env bash
echo "$*" >> calls.txt
while [ $# -gt 0 ]; do case $1 in --output.dir) out=$2 ;; --train.recompute) r=$2 ;; --train.steps) n=$2 ;; esac; shift; done
mkdir -p "$out"
for s in $(seq 1 "$n"); do  # mfu / tokens_per_s = 1e-5 on every step; the loss starts at llama2-7b's init loss and falls
  echo "{\"step\": $s, \"loss\": 11.$((20 - s)), \"tokens_per_s\": $((1000 * s)), \"mfu\": 0.0$s, \"peak_memory_mib\": 900, \"device_peak_memory_mib\": $((5000 + s))}"
done >"$out/metrics.jsonl"
SH
chmod +x fake-iris-train
rm -rf out_fake calls.txt
"$build/bin/iris-bench" --models llama2-7b --seq 4096 --steps 2 --warmup-steps 1 --device cuda --gpu h200-141gb \
  --recompute auto --iris-only --iris-train "$PWD/fake-iris-train" --out out_fake > bench_fake.log 2>&1 ||
  { echo "FAIL: iris-bench with the stand-in iris-train exited $?"; cat bench_fake.log; exit 1; }
[ "$(wc -l < calls.txt)" = 1 ] || { echo "FAIL: iris-train ran $(wc -l < calls.txt) times, not once"; exit 1; }
grep -q -- "--train.recompute none" calls.txt || { echo "FAIL: not the planner's recompute none"; cat calls.txt; exit 1; }
grep -q "target Iris MFU >= 50% (llama2-7b): not met (2.4%)" bench_fake.log || { echo "FAIL: no MFU target"; cat bench_fake.log; exit 1; }

/usr/bin/python3 - out/results.json out_iris/results.json out_fake/results.json <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
(m,) = r["models"]
iris, torch = m["iris"], m["pytorch"]
for name, side in (("iris", iris), ("pytorch", torch)):
    assert side["ok"], (name, side["error"])
    assert side["tokens_per_s"] > 0, (name, side["tokens_per_s"])
    assert side["peak_memory_mib"] > 0, (name, side["peak_memory_mib"])
assert torch["reported"]["compiled"] is False and torch["reported"]["attention"] == "eager", torch["reported"]
assert any("torch.compile not in torch" in n for n in torch["notes"]), torch["notes"]
assert iris["memory_saving"] == "recompute none", iris["memory_saving"]
ratio = iris["tokens_per_s"] / torch["tokens_per_s"]
assert math.isclose(m["ratio_tokens_per_s"], ratio, rel_tol=1e-9), (m["ratio_tokens_per_s"], ratio)
assert math.isclose(m["peak_tflops"], 0.05, rel_tol=1e-9), m["peak_tflops"]
want = torch["tokens_per_s"] * m["flops_per_token"] / 0.05e12
assert math.isclose(torch["mfu"], want, rel_tol=1e-9), (torch["mfu"], want)
assert math.isclose(iris["mfu"] / torch["mfu"], ratio, rel_tol=1e-6), (iris["mfu"], torch["mfu"], ratio)
assert iris["validity"] == "valid" and torch["validity"] == "valid", (iris["validity"], torch["validity"])
assert "ratio" not in m["targets"], m["targets"]
only = json.load(open(sys.argv[2]))["models"][0]
assert only["iris"]["ok"] and only["iris"]["mfu"] is None and only["peak_tflops"] is None, only
assert only["pytorch"]["ok"] is False and only["pytorch"]["tokens_per_s"] is None, only["pytorch"]
fake = json.load(open(sys.argv[3]))["models"][0]
f = fake["iris"]
assert f["ok"] and f["memory_saving"] == "recompute none" and len(f["attempts"]) == 1, f
assert fake["plan"]["fits"] and fake["plan"]["recompute"] == "none", fake["plan"]
assert math.isclose(f["tokens_per_s"], 2400, rel_tol=1e-9), f["tokens_per_s"]  # 2 / (1/2000 + 1/3000)
assert math.isclose(f["mfu"], 0.024, rel_tol=1e-9), f["mfu"]
assert f["peak_memory_mib"] == 5003 and f["peak_memory_kind"] == "device_peak_memory_mib", f
assert math.isclose(fake["peak_tflops"], 2400 * fake["flops_per_token"] / 0.024 / 1e12, rel_tol=1e-9), fake
assert fake["targets"]["mfu"]["status"] == "not met", fake["targets"]
print(f"ok: iris {iris['tokens_per_s']:.0f} tokens/s, pytorch {torch['tokens_per_s']:.0f} tokens/s, ratio {ratio:.2f}; "
      f"MFU {iris['mfu']:.4f} / {torch['mfu']:.4f} over 0.05 TFLOP/s; without a peak MFU is unknown; "
      "recompute auto ran once, with the planner's choice")
PY
