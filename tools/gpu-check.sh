#!/usr/bin/env bash
# Runs everything the bundle carries for the GPU, in one call and within a time budget, on a GPU machine
# that lacks this project's build dependencies (docs/gpu-validation.md has the commands that make the bundle).
#
#   tools/gpu-check.sh [--sections LIST] [--budget SECONDS] [BUNDLE]
#     BUNDLE            default .bundle, unpacked first from BUNDLE.tar.xz when only that came
#     --sections LIST   comma-separated, run in this order (default gtest,scripts,bench):
#                         gtest    every BUNDLE/bin/test_gpu_* (GoogleTest; at most 300 s each)
#                         scripts  every BUNDLE/tests/gpu/*.sh, as `bash SCRIPT BUNDLE BUNDLE` (see below)
#                         bench    every BUNDLE/bench/gpu*.sh, the same way (they drive bin/iris-bench and
#                                  bin/iris-attention-bench); iris-bench without a driver is reported as skipped
#     --budget SECONDS  total time (default 540). An item starts only with 20 s or more left, and runs under
#                       a timeout of what is left; the rest is skipped and the summary says so.
#
# Scripts (tests/gpu/*.sh, bench/gpu*.sh) are called like CTest calls tests/mpi/*.sh: $1 the source root,
# $2 the build dir (both the bundle root: bundle.sh --with/--with-build put tests/, configs/, bench/ and
# data/ there), from an empty scratch directory of their own, stdin closed. They may use mpirun (the
# bundle's, first on PATH through env.sh; ranks as root are allowed), $IRIS_PYTHON (the machine's python3,
# with PyTorch), and may write small results to $IRIS_GPU_ARTIFACTS (it comes back with the logs). Exit
# status 0 passes, 77 skips (as in CTest), anything else fails. A line `# gpu-check-timeout: N` in a
# script caps it at N seconds (default 300).
#
# IRIS_EXPECT_GPU=1 is set, so a missing device fails the tests instead of skipping them. Logs go to $OUT
# when set (the device tool brings them back), else ./gpu-logs: one NAME.log per item, gpu.txt, and
# summary.txt (section, item, pass/fail/timeout/skip, seconds, note). Exit status: 1 when anything failed.
set -uo pipefail
sections=gtest,scripts,bench budget=540 bundle=.bundle
while [ $# -gt 0 ]; do
  case $1 in
    --sections) sections=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) bundle=$1; shift ;;
  esac
done
start=$SECONDS
if [ ! -d "$bundle" ] && [ -f "$bundle.tar.xz" ]; then tar -xJf "$bundle.tar.xz" || exit 1; fi
[ -d "$bundle/bin" ] || { echo "gpu-check: no bundle in $bundle (see the header of this script)" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)
logs=${OUT:-gpu-logs}
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
summary=$logs/summary.txt
printf '%-8s %-40s %-8s %6s  %s\n' section item status seconds note > "$summary"

export IRIS_EXPECT_GPU=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export IRIS_PYTHON=${IRIS_PYTHON:-$(command -v python3 || true)}
# Open MPI's plugins, launcher and singleton settings (test_gpu_comm starts MPI as one rank without mpirun).
[ -f "$bundle/env.sh" ] && source "$bundle/env.sh"
# cuBLASLt, cudart and NCCL come from the machine (the bundle leaves them out: cuBLASLt is ~540 MB,
# NCCL ~220 MB). Without libnccl.so.2 there, test_gpu_comm cannot start: rebuild with -DIRIS_NCCL=OFF
# to run its host-staged half.
for lib in libcublasLt.so.13 libcudart.so.13 libnccl.so.2; do
  if ! ldconfig -p | grep -q "$lib"; then
    # The toolkit's folders, or the CUDA wheels next to the machine's PyTorch (nvidia/*/lib).
    dir=$(dirname "$(find /usr/local/cuda*/lib* /usr/lib /opt "$("${IRIS_PYTHON:-python3}" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)/nvidia" \
      -name "$lib*" 2>/dev/null | head -n1)" 2>/dev/null)
    [ -n "$dir" ] && [ "$dir" != . ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
nvidia-smi -L 2>&1 | tee "$logs/gpu.txt"

status=0
record() {  # section, item, status, seconds, note
  printf '%-8s %-40s %-8s %6s  %s\n' "$@" >> "$summary"
  echo "== $1 $2: $3 ($4 s)${5:+ $5}"
}
# Runs one item under what is left of the budget: run_item SECTION NAME CAP COMMAND...
run_item() {
  local section=$1 name=$2 cap=$3 left t0 rc limit
  shift 3
  left=$((budget - (SECONDS - start)))
  if [ "$left" -lt 20 ]; then record "$section" "$name" skip 0 "budget: ${left} s left"; return; fi
  limit=$((cap < left ? cap : left))
  t0=$SECONDS
  timeout -k 10 "$limit" "$@" > "$logs/$name.log" 2>&1 < /dev/null
  rc=$?
  case $rc in
    0) record "$section" "$name" pass $((SECONDS - t0)) ;;
    77) record "$section" "$name" skip $((SECONDS - t0)) "$(grep -m1 -i skip "$logs/$name.log")" ;;
    124|137) status=1; record "$section" "$name" timeout $((SECONDS - t0)) "stopped after $limit s$([ "$limit" -lt "$cap" ] && echo ' (budget)')" ;;
    *) status=1; record "$section" "$name" fail $((SECONDS - t0)) "exit $rc" ;;
  esac
}
script_cap() { sed -n 's/^# gpu-check-timeout: *\([0-9][0-9]*\).*/\1/p' "$1" | head -n1 | grep . || echo 300; }
# A script in its own scratch directory, with a folder for small results that comes back with the logs.
run_script() {  # script
  local name=$1 wd
  name=$(basename "$1" .sh)
  wd=${TMPDIR:-/tmp}/iris-gpu-check/$name
  rm -rf "$wd" && mkdir -p "$wd" "$logs/$name"
  IRIS_GPU_ARTIFACTS=$logs/$name run_item "$2" "$name" "$(script_cap "$1")" \
    bash -c 'cd "$1" && exec bash "$2" "$3" "$3"' _ "$wd" "$1" "$bundle"
  rmdir "$logs/$name" 2>/dev/null  # nothing written: no empty folder in the logs
}

shopt -s nullglob
IFS=, read -ra order <<< "$sections"
for section in "${order[@]}"; do
  case $section in
    gtest)
      for t in "$bundle"/bin/test_gpu_*; do
        run_item gtest "$(basename "$t")" 300 "$t" --gtest_color=no
        # Failures here; every shape's max abs/rel error is in the log.
        grep -E "^\[  FAILED |Failure|no CUDA device|outside atol" "$logs/$(basename "$t").log" 2>/dev/null | head -n 20
      done ;;
    scripts)
      scripts=("$bundle"/tests/gpu/*.sh)
      [ ${#scripts[@]} -gt 0 ] || record scripts 'tests/gpu/*.sh' skip 0 "none in the bundle (bundle.sh --with 'tests/gpu/*.sh')"
      for s in "${scripts[@]}"; do run_script "$s" scripts; tail -n 5 "$logs/$(basename "$s" .sh).log" 2>/dev/null; done ;;
    bench)
      drivers=("$bundle"/bench/gpu*.sh)
      if [ ${#drivers[@]} -eq 0 ]; then
        note="none in the bundle (bundle.sh --with 'bench/gpu*.sh')"
        [ -x "$bundle/bin/iris-bench" ] && note="bin/iris-bench is there but no bench/gpu*.sh drives it"
        record bench 'bench/gpu*.sh' skip 0 "$note"
      fi
      for s in "${drivers[@]}"; do run_script "$s" bench; tail -n 10 "$logs/$(basename "$s" .sh).log" 2>/dev/null; done ;;
    *) echo "gpu-check: unknown section '$section' (gtest, scripts, bench)" >&2; exit 2 ;;
  esac
done
over=$(grep -c ' budget: ' "$summary")
echo "== summary ($((SECONDS - start)) s of a $budget s budget$([ "$over" -gt 0 ] && echo "; $over not started for lack of time"))"
cat "$summary"
exit $status
