#!/usr/bin/env bash
# tools/gpu-check.sh --dry-run on this machine (no GPU needed), against the build dir as the bundle:
#   1. it completes, writes at most 8 files (none in folders: the device tool returns 8) into --out, and
#      summary.txt lists every section of the plan and ends with the "finished" line; the archive holds a
#      log per item and the summary; iris-bench's planner ran (the 7b item names the layers that fit).
#      Where the build has the CUDA tests, every item passes or skips (a missing binary fails).
#   2. an item that hangs past its cap (IRIS_GPU_CHECK_INJECT, cap 3 s, sleeping 60 s) times out at the cap,
#      and the sections after it still run.
set -uo pipefail
src=$1 build=$2
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }
sections=(probe kernels model bench1b attention 7b rest)

rm -rf out out_h200 unpacked
bash "$src/tools/gpu-check.sh" --dry-run --src "$src" --out out "$build" > dry.log 2>&1
rc=$?
cat out/summary.txt
n=$(find out -type f | wc -l)
check "at most 8 files in the output folder ($n)" test "$n" -le 8
check "no folders in the output folder" test -z "$(find out -mindepth 1 -type d)"
check "the summary says it finished" grep -q "^finished: every asked section ran" out/summary.txt
for s in "${sections[@]}"; do check "the summary lists section $s" grep -q "^$s " out/summary.txt; done
mkdir unpacked && tar -xzf out/gpu-check-logs.tar.gz -C unpacked
items=$(awk 'NR > 3 && NF >= 3 && $2 != "-" { print $1 "-" $2 }' out/summary.txt | grep -v '^finished' | sort -u)
for i in $items; do check "the archive holds $i.log" test -f "unpacked/logs/$i.log"; done
check "the archive holds the summary" cmp -s out/summary.txt unpacked/logs/summary.txt
check "the planner ran for the 7b section" grep -Eq "^7b +llama2-7b .* L=[0-9]+/32; plan: recompute" out/summary.txt
if [ -x "$build/bin/test_gpu_matmul" ]; then
  check "a CUDA build: every item passed or skipped (exit $rc)" test "$rc" = 0
  check "a CUDA build: no item failed" test -z "$(awk '$3 == "fail" || $3 == "timeout"' out/summary.txt)"
else
  echo "note: no CUDA tests in this build: items that need them fail as 'not in the bundle' (exit $rc)"
fi

# The planner's GPU follows --gpu (on the GPU machine: nvidia-smi's name): on an H200 all of llama2-7b.
bash "$src/tools/gpu-check.sh" --dry-run --gpu h200-141gb --sections 7b --src "$src" --out out_h200 "$build" > h200.log 2>&1
check "an h200-141gb plans llama2-7b with all 32 layers" grep -Eq "^7b +llama2-7b .* L=32/32; plan: recompute" out_h200/summary.txt
check "--sections 7b: the other sections are listed as not asked" grep -Eq "^kernels +- +not asked" out_h200/summary.txt

# 2. A hung item costs its cap, not the call.
rm -rf out2
t0=$SECONDS
IRIS_GPU_CHECK_INJECT="model:3:echo hanging; sleep 60" \
  bash "$src/tools/gpu-check.sh" --dry-run --src "$src" --out out2 "$build" > hung.log 2>&1
took=$((SECONDS - t0))
cat out2/summary.txt
check "the hung item timed out at its 3 s cap" grep -Eq "^model +injected +timeout +[34] +stopped after 3 s" out2/summary.txt
check "the sections after it ran" grep -Eq "^rest +stage_tp2 +(skip|pass)" out2/summary.txt
check "the whole run took well under the item's 60 s ($took s)" test "$took" -lt 45
exit $fail
