#!/usr/bin/env bash
# tools/gpu-check.sh cut off midway (as the device tool's time limit does) leaves the archive and the
# summary of what finished. A dry run against the build dir, with an item injected at the start of the
# bench1b section that records its pid and sleeps (IRIS_GPU_CHECK_INJECT):
#   1. SIGKILL to the whole process group once that item runs (no trap can run): summary.txt lists the
#      probe, kernels and model items, bench1b and later sections "not run"; the archive unpacks and holds
#      the model section's log; at most 8 files.
#   2. SIGTERM to the script alone, at the same point: it stops the item at once (not at its 60 s cap) and
#      the summary's last line says where it was cut off.
set -uo pipefail
src=$1 build=$2
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }
rm -f hung.pid

start_cut_off_run() {  # out dir; sets pid (the script, leader of its own process group)
  rm -rf "$1" hung.pid
  IRIS_GPU_CHECK_INJECT="bench1b:60:echo \$\$ > $PWD/hung.pid; exec sleep 60" \
    setsid bash "$src/tools/gpu-check.sh" --dry-run --src "$src" --out "$1" "$build" > "$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do [ -s hung.pid ] && return 0; sleep 0.2; done
  echo "FAIL: the injected item never started"; cat "$1.log"; kill -9 -- -"$pid"; exit 1
}
stop_hung_item() { [ -s hung.pid ] && kill -9 "$(cat hung.pid)" 2>/dev/null; wait "$pid" 2>/dev/null; }

# 1. SIGKILL: only what publish() wrote after the last finished item survives.
start_cut_off_run out_kill
kill -9 -- -"$pid"
stop_hung_item
cat out_kill/summary.txt
check "at most 8 files ($(find out_kill -type f | wc -l))" test "$(find out_kill -type f | wc -l)" -le 8
check "the model section's item is in the summary" grep -Eq "^model +trainer_1-3 +(skip|pass)" out_kill/summary.txt
check "the kernels items are in the summary" grep -Eq "^kernels +matmul " out_kill/summary.txt
for s in bench1b attention 7b rest; do check "$s is listed as not run" grep -Eq "^$s +- +not run" out_kill/summary.txt; done
check "the summary says it was in progress" grep -q "^in progress: model" out_kill/summary.txt
rm -rf unpacked && mkdir unpacked
check "the archive unpacks" tar -xzf out_kill/gpu-check-logs.tar.gz -C unpacked
check "the archive holds the model section's log" test -f unpacked/logs/model-trainer_1-3.log
check "the archive holds the probe's log" test -f unpacked/logs/probe-device.log

# 2. SIGTERM to the script: the trap stops the item and publishes.
start_cut_off_run out_term
t0=$SECONDS
kill -TERM "$pid"
wait "$pid" 2>/dev/null
took=$((SECONDS - t0))
stop_hung_item
cat out_term/summary.txt
check "the script stopped within 10 s of SIGTERM, not at the item's 60 s cap ($took s)" test "$took" -lt 10
check "the summary says where it was cut off" grep -q "^cut off by a signal during bench1b" out_term/summary.txt
check "bench1b is listed as running" grep -Eq "^bench1b +- +running" out_term/summary.txt
check "the model section's item is in the summary" grep -Eq "^model +trainer_1-3 +(skip|pass)" out_term/summary.txt
exit $fail
