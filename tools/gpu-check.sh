#!/usr/bin/env bash
# The first-contact plan for a GPU machine: sections ordered by the value of what each proves, each under
# its own time cap, and after every item all logs so far packed into one archive beside a rewritten
# summary, so a call cut off at any point returns everything that finished (docs/gpu-validation.md).
#
#   tools/gpu-check.sh [--dry-run] [--budget SECONDS] [--sections LIST] [--gpu KEY] [--out DIR] [--src DIR] [BUNDLE]
#     BUNDLE            default .bundle (unpacked first from BUNDLE.tar.xz when only that came); any folder with
#                       bin/ works, e.g. a build dir with --src the checkout
#     --src DIR         where tests/ and bench/ are (default BUNDLE: bundle.sh --with puts them there)
#     --dry-run         the same plan on a machine without a GPU: every GPU item is checked without a device
#                       (test binaries list their tests, scripts parse, iris-bench asks the planner) and
#                       reported as skipped; the same files are written
#     --budget SECONDS  total time (default 540): an item starts only with 15 s left, under min(its cap, what
#                       is left of its section's cap, what is left of the budget)
#     --sections LIST   comma-separated subset of the plan, in plan order (default: all)
#     --gpu KEY         configs/hardware/gpus.json entry for the planner (default: from nvidia-smi's name;
#                       h100-80gb in a dry run)
#     --out DIR         default $OUT (the device tool brings it back), else ./gpu-logs
# The plan (section: cap in seconds, what):
#   probe 30       device, driver, CUDA, NCCL, cuBLASLt, free memory
#   kernels 300    test_gpu_* vs the CPU reference: matmul, layers, xent, optim, init, model, model_shapes,
#                  then attention (60-90 s each)
#   model 150      trainer_cuda.sh steps 1-3: cuda vs cpu, determinism, resume
#   bench1b 200    iris-bench llama3.2-1b, seq 4096, Iris then PyTorch, no retries
#   attention 130  iris-attention-bench: wmma, mma and PyTorch SDPA at the same shapes
#   7b 180         llama2-7b (H200), or as many of its layers as the planner fits (80 GB), Iris only
#   rest 300       communicators, decode attention, the GPU decoder (iris-generate), NF4 dequant vs the CPU, the stage
#                  at tp=2 on one GPU, streamed checkpoints, trainer_cuda.sh steps 4-11
# Files in DIR (at most 8, none in folders): summary.txt (section, item, status, seconds, key numbers) and
# gpu-check-logs.tar.gz (every item's log and small results), both replaced atomically after every item.
# IRIS_GPU_CHECK_INJECT="SECTION:CAP:COMMAND" adds an item at the start of SECTION (the tests use it to
# simulate a hung item). Exit status: 1 when an item failed or timed out, 2 on bad arguments.
set -uo pipefail
plan=(probe kernels model bench1b attention 7b rest)
declare -A section_cap=([probe]=30 [kernels]=300 [model]=150 [bench1b]=200 [attention]=130 [7b]=180 [rest]=300)
dry=0 budget=540 sections="" gpu_key="" out=${OUT:-gpu-logs} bundle=.bundle src=""
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry=1; shift ;;
    --budget) budget=$2; shift 2 ;;
    --sections) sections=$2; shift 2 ;;
    --gpu) gpu_key=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --src) src=$2; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) bundle=$1; shift ;;
  esac
done
[[ $budget =~ ^[0-9]+$ ]] || { echo "gpu-check: --budget must be whole seconds, got '$budget'" >&2; exit 2; }
for s in ${sections//,/ }; do
  [ -n "${section_cap[$s]:-}" ] || { echo "gpu-check: unknown section '$s' (${plan[*]})" >&2; exit 2; }
done
start=$SECONDS
if [ ! -d "$bundle" ] && [ -f "$bundle.tar.xz" ]; then tar -xJf "$bundle.tar.xz" || exit 1; fi
[ -d "$bundle/bin" ] || { echo "gpu-check: no bin/ in '$bundle' (see the header of this script)" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)
src=$(cd "${src:-$bundle}" && pwd) || exit 2
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
work=${TMPDIR:-/tmp}/iris-gpu-check.$$
logs=$work/logs
rm -rf "$work" && mkdir -p "$logs" || exit 2
results=$work/results.tsv  # section, item, status, seconds, note: one row per item, in run order
: > "$results"
current="(starting)"

# Rewrites summary.txt and the archive from what has finished. tar and mv to temporary names first, so
# a cut-off leaves the previous complete pair, never a half-written one.
publish() {  # final note
  local s status
  {
    echo "gpu-check $([ "$dry" = 1 ] && echo '--dry-run ')on $(hostname) at $(date -u +%FT%TZ), $((SECONDS - start)) s of a $budget s budget"
    echo "gpu: ${gpu_line:-unknown}"
    printf '%-10s %-28s %-8s %6s  %s\n' section item status seconds note
    for s in "${plan[@]}"; do
      if grep -q "^$s	" "$results"; then
        awk -F'\t' -v s="$s" '$1 == s { printf "%-10s %-28s %-8s %6s  %s\n", $1, $2, $3, $4, $5 }' "$results"
      else
        status="not run"
        want "$s" || status="not asked"
        [ "$s" = "$current" ] && status="running"
        printf '%-10s %-28s %-8s %6s  %s\n' "$s" - "$status" - ""
      fi
    done
    echo "${1:-in progress: $current}"
  } > "$out/.summary.tmp" && mv -f "$out/.summary.tmp" "$out/summary.txt"
  cp "$out/summary.txt" "$logs/summary.txt"
  # Token datasets iris-bench writes beside its results are inputs, not results: left out.
  tar -czf "$out/.logs.tmp" --exclude='*.bin' --exclude='*.idx' -C "$work" logs &&
    mv -f "$out/.logs.tmp" "$out/gpu-check-logs.tar.gz"
}
item_pid=""
# Cut off (the device tool's time limit): stop the running item (timeout ends its process group), then
# publish what finished; a SIGKILL leaves the pair published after the last item instead.
trap '[ -n "$item_pid" ] && kill -TERM "$item_pid" 2>/dev/null; publish "cut off by a signal during $current"; exit 1' TERM INT HUP

want() { [ -z "$sections" ] || [[ ,$sections, == *",$1,"* ]]; }
status=0
record() {  # section, item, status, seconds, note
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5//$'\t'/ }" >> "$results"
  echo "== $1 $2: $3 ($4 s)${5:+ $5}"
}
section_end=0
# run_item SECTION NAME CAP COMMAND: the command (a shell snippet) under the tightest of the three caps,
# its output in logs/NAME.log. Exit 0 passes, 77 skips (CTest's convention), 124/137 timed out.
run_item() {
  local section=$1 name=$2 cap=$3 cmd=$4 left t0 rc limit note=""
  left=$((budget - (SECONDS - start)))
  [ $((section_end - SECONDS)) -lt "$left" ] && left=$((section_end - SECONDS))
  if [ "$left" -lt 15 ]; then record "$section" "$name" skip 0 "no time: ${left} s left of the section or budget"; publish; return; fi
  limit=$((cap < left ? cap : left))
  t0=$SECONDS
  local log=$section-$name  # logs/SECTION-NAME.log, and SECTION-NAME/ for the item's results
  mkdir -p "$logs/$log"
  # In the background, so a signal to this script runs its trap at once rather than after the item.
  (cd "$work" && IRIS_GPU_ARTIFACTS=$logs/$log exec timeout -k 5 "$limit" bash -c "$cmd") > "$logs/$log.log" 2>&1 < /dev/null &
  item_pid=$!
  wait "$item_pid"
  rc=$?
  item_pid=
  rmdir "$logs/$log" 2>/dev/null
  # A runaway log must not push the archive past the device tool's 16 MiB a file: keep 1 MiB of each end.
  if [ "$(stat -c %s "$logs/$log.log")" -gt $((4 << 20)) ]; then
    { head -c $((1 << 20)) "$logs/$log.log"; printf '\n[... gpu-check cut the middle of this log ...]\n'
      tail -c $((1 << 20)) "$logs/$log.log"; } > "$logs/$log.cut" && mv -f "$logs/$log.cut" "$logs/$log.log"
  fi
  [ -n "${notes_of:-}" ] && note=$($notes_of "$log" 2>/dev/null | tr '\n' ' ')
  case $rc in
    0) record "$section" "$name" pass $((SECONDS - t0)) "$note" ;;
    77) record "$section" "$name" skip $((SECONDS - t0)) \
          "$({ grep -m1 '^dry run:' "$logs/$log.log" || grep -m1 -i 'skip' "$logs/$log.log" || tail -n1 "$logs/$log.log"; } |
             cut -c1-150) $note" ;;
    124|137) status=1; record "$section" "$name" timeout $((SECONDS - t0)) "stopped after $limit s (cap $cap s) $note" ;;
    *) status=1; record "$section" "$name" fail $((SECONDS - t0)) "exit $rc: $(grep -m1 -E 'FAIL|error|Error' "$logs/$log.log" | cut -c1-150) $note" ;;
  esac
  publish
}
q() { [ $# -eq 0 ] || printf '%q ' "$@"; }  # words quoted for bash -c
# In a dry run an item proves only what needs no device, then exits 77 with the reason.
dry_skip='{ echo "dry run: needs a GPU, not run"; exit 77; }'

# A gtest binary with a filter; in a dry run it must load (its libraries resolve) and list a test.
gtest_item() {  # section, item name, cap, binary, filter
  local bin=$bundle/bin/$4
  if [ "$dry" = 1 ]; then
    run_item "$1" "$2" "$3" "test -x $(q "$bin") || { echo 'FAIL: $4 is not in the bundle'; exit 1; }
      $(q "$bin") --gtest_list_tests --gtest_filter=$(q "$5") > list.txt || { cat list.txt; echo 'FAIL: it does not start'; exit 1; }
      cat list.txt; n=\$(grep -c '^  ' list.txt); [ \$n -gt 0 ] || { echo 'FAIL: no test matches'; exit 1; }
      echo \"dry run: \$n tests listed, needs a GPU to run them\"; exit 77"
  else
    run_item "$1" "$2" "$3" "$(q "$bin") --gtest_color=no --gtest_filter=$(q "$5")"
  fi
}
# A script run as CTest runs it (bash SCRIPT SRC BUILD) from a scratch folder; a dry run parses it.
script_item() {  # section, item name, cap, script relative to SRC, environment assignments...
  local section=$1 name=$2 cap=$3 script=$src/$4
  shift 4
  if [ "$dry" = 1 ]; then
    run_item "$section" "$name" "$cap" "bash -n $(q "$script") && $dry_skip"
  else
    run_item "$section" "$name" "$cap" "mkdir -p scratch/$name && cd scratch/$name && env $(q "$@") bash $(q "$script" "$src" "$bundle")"
  fi
}

# Key numbers for the summary from what an item left in its artifacts folder (iris-bench's results.json).
bench_notes() {
  local json=$logs/$1/results.json
  [ -f "$json" ] || json=$(ls "$logs/$1"/*/results.json 2>/dev/null | head -n1)
  [ -f "$json" ] || { grep -m3 -E "^\[plan\]|refus" "$logs/$1.log"; return; }
  python3 - "$json" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1]))["models"]:
    p = m.get("plan") or {}
    parts = [f"{m['name']} L={m.get('layers')}/{m.get('model_layers')}"]
    if p:
        parts.append(f"plan: recompute {p['recompute']}, {p['need_gib']:.1f}/{p['have_gib']:.1f} GiB" if p["fits"]
                     else "REFUSED by the planner")
    for side in ("iris", "pytorch"):
        s = m.get(side) or {}
        if s.get("ok") and s.get("tokens_per_s") is not None:
            mfu = f", MFU {100 * s['mfu']:.1f}%" if s.get("mfu") else ""
            parts.append(f"{side} {s['tokens_per_s']:,.0f} tok/s{mfu}, {s.get('memory_saving', '')}, "
                         f"{s.get('peak_memory_mib') or 0:,.0f} MiB, losses {s.get('validity', '')}")
        elif s.get("ok"):
            parts.append(f"{side} {s.get('validity', '')}")
        elif s.get("error"):
            parts.append(f"{side} failed")
    if m.get("ratio_tokens_per_s"):
        parts.append(f"ratio {m['ratio_tokens_per_s']:.2f}")
    for name, t in (m.get("targets") or {}).items():
        parts.append(f"target {name} >= {t['target']}: {t['status']}")
    print("; ".join(parts))
PY
}
attention_notes() {  # "forward, mma (IRIS_ATTENTION=mma) 1.234 ms 456.7 TFLOP/s;..." from each timing line
  grep -E ' ms +[0-9.]+ TFLOP/s' "$logs/$1.log" | sed -E 's/^ +//; s/ +([0-9.]+) ms +([0-9.]+) TFLOP\/s/ \1 ms \2 TFLOP\/s/' |
    paste -sd';'
}

# --- the sections ---------------------------------------------------------------------------------------
section_probe() {
  local libs='for lib in libcudart.so.13 libcublasLt.so.13 libnccl.so.2; do
      if ldconfig -p | grep -q "$lib"; then echo "$lib: $(ldconfig -p | grep -m1 "$lib" | sed "s/.*=> //")";
      else f=$(find ${LD_LIBRARY_PATH//:/ } -maxdepth 1 -name "$lib*" 2>/dev/null | head -n1); echo "$lib: ${f:-NOT FOUND}"; fi; done'
  if [ "$dry" = 1 ]; then
    run_item probe device 20 "$libs; command -v nvidia-smi && nvidia-smi -L; $dry_skip"
  else
    # The bundle is built against CUDA 13 (libcudart.so.13): an older driver fails every CUDA program.
    notes_of=probe_notes run_item probe device 20 "nvidia-smi --query-gpu=name,driver_version,memory.total,memory.free \
      --format=csv || { echo 'FAIL: nvidia-smi'; exit 1; }; nvidia-smi | grep -m1 'CUDA Version'; $libs
      cuda=\$(nvidia-smi | grep -o 'CUDA Version: [0-9]*' | grep -o '[0-9]*\$')
      [ \"\${cuda:-0}\" -ge 13 ] || { echo \"FAIL: the driver supports CUDA \${cuda:-?}; the bundle needs 13\"; exit 1; }
      ! grep -q 'libcudart.so.13: NOT FOUND\\|libcublasLt.so.13: NOT FOUND' <<< \"\$($libs)\" ||
        { echo 'FAIL: cudart or cuBLASLt not found'; exit 1; }"
  fi
}
probe_notes() {  # "NVIDIA H100 80GB HBM3, driver 580.x, 81559 MiB, 81000 MiB free; CUDA 13.0; nccl: path"
  awk -F', ' 'NR == 2 { printf "%s, driver %s, %s total, %s free; ", $1, $2, $3, $4 }' "$logs/$1.log"
  grep -o 'CUDA Version: [0-9.]*' "$logs/$1.log" | head -n1 | tr '\n' ';'
  grep -m1 '^libnccl' "$logs/$1.log"
}
section_kernels() {
  gtest_item kernels matmul 60 test_gpu_matmul '*'
  gtest_item kernels layers 60 test_gpu_layers '*'
  gtest_item kernels xent 60 test_gpu_xent '*'
  gtest_item kernels optim 60 test_gpu_optim '*'
  gtest_item kernels init 60 test_gpu_init '*'
  gtest_item kernels model 90 test_gpu_model '*'
  gtest_item kernels model_shapes 90 test_gpu_model_shapes '*'
  # The SIMT path and the forward first: if they pass and the rest fails, the WMMA backward is at fault.
  gtest_item kernels attention_forward 60 test_gpu_attention '*Simt*:*Forward*'
  gtest_item kernels attention_backward 90 test_gpu_attention '-*Simt*:*Forward*'
}
section_model() { script_item model trainer_1-3 150 tests/gpu/trainer_cuda.sh IRIS_TRAINER_CUDA_STEPS=1,2,3; }
# iris-bench asks the planner first (no out-of-memory retries); a dry run stops after that answer.
bench_item() {  # section, item name, cap, iris-bench arguments...
  local section=$1 name=$2 cap=$3
  shift 3
  local cmd
  cmd="$(q "$bundle/bin/iris-bench" --device cuda --gpu "$gpu_key" --python "${IRIS_PYTHON:-python3}" "$@") --out \"\$IRIS_GPU_ARTIFACTS\""
  [ "$dry" = 1 ] && cmd="$cmd --plan-only && $dry_skip"
  notes_of=bench_notes run_item "$section" "$name" "$cap" "$cmd"
}
section_bench1b() {
  bench_item bench1b llama3.2-1b 200 --models llama3.2-1b --seq 4096 --micro-batch 1 --grad-accum 8 --steps 3 \
    --warmup-steps 2 --recompute auto --torch-checkpointing off
}
section_attention() {
  # iris-attention-bench exits 77 without a device; here a device is expected, so that fails.
  local cmd="for shape in '1 4096 32 8 64' '1 4096 32 32 128'; do $(q "$bundle/bin/iris-attention-bench") \$shape 10
    rc=\$?; [ \$rc = 77 ] && { echo 'FAIL: iris-attention-bench found no CUDA device'; exit 1; }; [ \$rc = 0 ] || exit \$rc; done"
  local sdpa="$(q "${IRIS_PYTHON:-python3}" "$src/bench/torch_sdpa.py") --shapes '1,4096,32,8,64;1,4096,32,32,128' --iters 10"
  if [ "$dry" = 1 ]; then
    run_item attention kernels 60 "test -x $(q "$bundle/bin/iris-attention-bench") || { echo 'FAIL: no iris-attention-bench'; exit 1; }; $dry_skip"
    run_item attention sdpa 60 "test -f $(q "$src/bench/torch_sdpa.py") || { echo 'FAIL: no bench/torch_sdpa.py'; exit 1; }; $dry_skip"
  else
    notes_of=attention_notes run_item attention kernels 60 "$cmd"
    notes_of=attention_notes run_item attention sdpa 60 "$sdpa"
  fi
}
section_7b() {
  # A 7B-shaped model as deep as the planner fits on this GPU (all 32 layers on an H200): MFU per layer.
  bench_item 7b llama2-7b 180 --models llama2-7b --seq 4096 --micro-batch 1 --grad-accum 8 --steps 3 \
    --warmup-steps 1 --recompute auto --fit-layers --iris-only
}
section_rest() {
  gtest_item rest comm 90 test_gpu_comm '*'
  gtest_item rest decode_attention 60 test_gpu_decode_attention '*'
  gtest_item rest generate 90 test_gpu_generate '*'
  gtest_item rest nf4 60 test_gpu_nf4 '*'
  script_item rest stage_tp2 150 tests/gpu/stage_tp2.sh
  script_item rest trainer_streamed 250 tests/gpu/trainer_cuda_streamed.sh
  script_item rest trainer_4-11 300 tests/gpu/trainer_cuda.sh IRIS_TRAINER_CUDA_STEPS=4,5,6,7,8,9,10,11
}

# --- the run --------------------------------------------------------------------------------------------
export IRIS_PYTHON=${IRIS_PYTHON:-$(command -v python3 || true)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
[ "$dry" = 1 ] || export IRIS_EXPECT_GPU=1  # a missing device fails the tests instead of skipping them
# Open MPI's plugins and launcher (test_gpu_comm starts MPI as one rank without mpirun).
[ -f "$bundle/env.sh" ] && source "$bundle/env.sh"
# cuBLASLt, cudart and NCCL come from the machine: the toolkit's folders, or the CUDA wheels beside PyTorch.
wheels=$("$IRIS_PYTHON" -c 'import site; print(" ".join(p + "/nvidia" for p in site.getsitepackages()))' 2>/dev/null)
for lib in libcublasLt.so.13 libcudart.so.13 libnccl.so.2; do
  if ! ldconfig -p | grep -q "$lib"; then
    # shellcheck disable=SC2086  # $wheels: one folder per site-packages
    dir=$(dirname "$(find /usr/local/cuda*/lib* /usr/lib /opt $wheels -name "$lib*" 2>/dev/null | head -n1)" 2>/dev/null)
    [ -n "$dir" ] && [ "$dir" != . ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
gpu_line=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -n1)
if [ -z "$gpu_key" ]; then
  case $gpu_line in
    *H200*) gpu_key=h200-141gb ;;
    *H100*) gpu_key=h100-80gb ;;
    *A100*80*) gpu_key=a100-80gb ;;
    *A100*) gpu_key=a100-40gb ;;
    *) gpu_key=h100-80gb; gpu_line="${gpu_line:-none found} (planner assumes h100-80gb; --gpu KEY to change)" ;;
  esac
fi
gpu_line="$gpu_line [planner: $gpu_key]"
publish
for s in "${plan[@]}"; do
  want "$s" || continue
  current=$s
  section_end=$((SECONDS + ${section_cap[$s]}))
  if [ -n "${IRIS_GPU_CHECK_INJECT:-}" ] && [ "${IRIS_GPU_CHECK_INJECT%%:*}" = "$s" ]; then
    inject=${IRIS_GPU_CHECK_INJECT#*:}
    run_item "$s" injected "${inject%%:*}" "${inject#*:}"
  fi
  "section_$s"
done
current=""
over=$(grep -c 'no time:' "$results")
publish "finished: every asked section ran ($((SECONDS - start)) s$([ "$over" -gt 0 ] && echo "; $over items not started for lack of time"))"
cat "$out/summary.txt"
rm -rf "$work"
exit $status
