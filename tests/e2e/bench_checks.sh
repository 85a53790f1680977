#!/usr/bin/env bash
# iris-bench's checks before and after the Iris side, on the CPU (no GPU, no PyTorch needed):
#   1. refusal: llama2-7b on one a100-40gb (the planner: ~131 GiB) and the tiny model under a 1 MiB host
#      budget exit 3 with the planner's reason, in under 10 s, and never start iris-train (a stand-in
#      records any call); --fit-layers plans a 7B-shaped model shallower than 32 layers for an h100-80gb.
#   2. validity: the tiny model trains and is "valid"; the same run with initializer_range 1.0 (a wrong
#      init scale: first loss far from ln V + C·std²/2) and with optim.lr=50 (the loss does not fall) are
#      INVALID, print no speed, leave tokens_per_s null in results.json and exit 1.
set -uo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"  # write_tiny_model
bench=$build/bin/iris-bench
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }

printf '#!/usr/bin/env bash\necho called >> "%s/calls.txt"; exit 1\n' "$PWD" > stand-in-iris-train
chmod +x stand-in-iris-train
rm -f calls.txt
t0=$SECONDS
"$bench" --models llama2-7b --device cuda --gpu a100-40gb --iris-only --iris-train "$PWD/stand-in-iris-train" \
  --out refuse_gpu > refuse_gpu.log 2>&1
rc=$?
cat refuse_gpu.log
check "llama2-7b on an a100-40gb: exit 3 (refused), got $rc" test "$rc" = 3
check "the refusal says why" grep -q "does not fit on one a100-40gb: .* GiB needed with recompute none, .* GiB there" refuse_gpu.log
check "the table says REFUSED" grep -q "^  Iris      REFUSED" refuse_gpu.log
write_tiny_model tiny.json false
"$bench" --models "$PWD/tiny.json" --device cpu --memory-gib 0.001 --iris-only --iris-train "$PWD/stand-in-iris-train" \
  --seq 64 --out refuse_cpu > refuse_cpu.log 2>&1
rc=$?
cat refuse_cpu.log
check "the tiny model in 1 MiB of host memory: exit 3, got $rc" test "$rc" = 3
check "no time spent: $((SECONDS - t0)) s for both refusals" test $((SECONDS - t0)) -lt 10
check "iris-train never started" test ! -e calls.txt
"$bench" --models llama2-7b --device cuda --gpu h100-80gb --iris-only --fit-layers --plan-only --out fit > fit.log 2>&1
check "--fit-layers --plan-only exits 0" test $? = 0
cat fit.log
python3 - fit/results.json refuse_gpu/results.json <<'PY' || fail=1
import json, sys
m = json.load(open(sys.argv[1]))["models"][0]
assert m["plan"]["fits"] and 1 <= m["layers"] < m["model_layers"] == 32, m
assert m["plan"]["need_gib"] <= m["plan"]["have_gib"], m["plan"]
r = json.load(open(sys.argv[2]))["models"][0]
assert not r["plan"]["fits"] and r["plan"]["need_gib"] > r["plan"]["have_gib"], r["plan"]
assert r["iris"]["ok"] is False and r["iris"]["error"].startswith("REFUSED"), r["iris"]
print(f"ok   --fit-layers: {m['layers']} of 32 layers on an h100-80gb, {m['plan']['need_gib']:.1f} of "
      f"{m['plan']['have_gib']:.1f} GiB, recompute {m['plan']['recompute']}")
PY

# 2. The same shapes as bench_smoke.sh's, where the tiny model learns.
common=(--seq 64 --micro-batch 4 --grad-accum 4 --steps 3 --warmup-steps 1 --device cpu --threads 1 --iris-only)
sed 's/"initializer_range": [0-9.]*/"initializer_range": 1.0/' tiny.json > tiny_wide_init.json
grep -q '"initializer_range": 1.0' tiny_wide_init.json || { echo "FAIL: could not write the wide init"; exit 1; }
run() {  # name, expected exit, extra arguments...
  local name=$1 want=$2 rc
  shift 2
  "$bench" "${common[@]}" --out "$name" "$@" > "$name.log" 2>&1
  rc=$?
  grep -E "^  Iris |INVALID|\[plan\]" "$name.log"
  check "$name: exit $want, got $rc" test "$rc" = "$want"
}
run valid 0 --models "$PWD/tiny.json" --iris-arg optim.lr=1e-2
run wide_init 1 --models "$PWD/tiny_wide_init.json" --iris-arg optim.lr=1e-2
run huge_lr 1 --models "$PWD/tiny.json" --iris-arg optim.lr=50
check "wide init: INVALID, first loss" grep -q "^  Iris      INVALID: first loss .* not within 0.3 of the random init's" wide_init.log
check "huge lr: INVALID, the loss did not fall" grep -q "^  Iris      INVALID: the loss did not fall" huge_lr.log
python3 - valid/results.json wide_init/results.json huge_lr/results.json <<'PY' || fail=1
import json, math, sys
sides = [json.load(open(p))["models"][0]["iris"] for p in sys.argv[1:]]
valid, wide, huge = sides
assert valid["validity"] == "valid" and valid["tokens_per_s"] > 0, valid
assert abs(valid["losses"][0] - (math.log(2048) + 32 * 0.05**2 / 2)) <= 0.3, valid["losses"]
assert valid["losses"][-1] < valid["losses"][1], valid["losses"]
for s in (wide, huge):
    assert s["ok"] and s["validity"].startswith("INVALID") and s["tokens_per_s"] is None, s
print(f"ok   losses: valid {valid['losses'][0]:.3f} -> {valid['losses'][-1]:.3f}; wide init starts at "
      f"{wide['losses'][0]:.3f}; lr 50 ends at {huge['losses'][-1]:.4g}")
PY
exit $fail
