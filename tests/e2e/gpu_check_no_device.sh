#!/usr/bin/env bash
# tools/gpu-check.sh in earnest (not --dry-run) on a machine without a GPU, behind a stand-in nvidia-smi
# that reports an H100 with a CUDA 13 driver: every command line the plan builds really runs. The probe
# passes (the stand-in's figures in its note); every GPU item then fails — IRIS_EXPECT_GPU=1 turns "no CUDA
# device" into a failure, never a skip or a pass — with its own error, not a broken command (exit 127,
# "command not found", an unknown option); iris-bench's results.json comes back in the archive.
# Skips where a real nvidia-smi exists (a GPU machine runs the plan itself) or the build has no CUDA tests.
set -uo pipefail
src=$1 build=$2
command -v nvidia-smi >/dev/null && { echo "SKIP: a real nvidia-smi is here"; exit 77; }
[ -x "$build/bin/test_gpu_matmul" ] || { echo "SKIP: no CUDA tests in this build"; exit 77; }
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }
mkdir -p fake
cat > fake/nvidia-smi <<'SH'
#!/usr/bin/env bash
case "$*" in
  *noheader*) echo "NVIDIA H100 80GB HBM3, 81559 MiB" ;;
  *--query-gpu*) echo "name, driver_version, memory.total [MiB], memory.free [MiB]"
                 echo "NVIDIA H100 80GB HBM3, 580.159.04, 81559 MiB, 81000 MiB" ;;
  *) echo "| NVIDIA-SMI 580.159.04     Driver Version: 580.159.04     CUDA Version: 13.0     |" ;;
esac
SH
chmod +x fake/nvidia-smi
rm -rf out unpacked
PATH=$PWD/fake:$PATH bash "$src/tools/gpu-check.sh" --budget 300 --src "$src" --out out "$build" > run.log 2>&1
rc=$?
cat out/summary.txt
check "exit 1 (items failed), got $rc" test "$rc" = 1
check "the planner's GPU is the stand-in's H100" grep -q "^gpu: NVIDIA H100 80GB HBM3, 81559 MiB \[planner: h100-80gb\]" out/summary.txt
check "the probe passed, with the driver's figures" grep -Eq "^probe +device +pass .*driver 580.159.04, 81559 MiB total, 81000 MiB free; CUDA Version: 13.0" out/summary.txt
items=$(awk 'NR > 3 && $2 != "-" && $1 != "probe" && $1 != "finished:" { print $1 "-" $2 }' out/summary.txt)
check "every section after the probe has items" test "$(echo "$items" | wc -l)" -ge 15
mkdir unpacked && tar -xzf out/gpu-check-logs.tar.gz -C unpacked
for i in $items; do
  log=unpacked/logs/$i.log
  row=$(awk -v s="${i%%-*}" -v n="${i#*-}" '$1 == s && $2 == n' out/summary.txt)
  case $i in
    attention-sdpa) check "$i: skipped or failed (no torch with CUDA here)" grep -Eq " (skip|fail) " <<< "$row" ;;
    *) check "$i: failed" grep -q " fail " <<< "$row" ;;
  esac
  check "$i: no broken command" bash -c "! grep -Eq 'command not found|No such file or directory|unrecognised option|unknown option' '$log'"
  check "$i: not exit 127 or 2" bash -c "! grep -Eq 'exit (127|2):' <<< '$row'"
done
check "iris-bench's results.json is in the archive" test -f unpacked/logs/bench1b-llama3.2-1b/results.json
exit $fail
