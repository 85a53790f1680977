#!/usr/bin/env bash
# A full disk on a checkpoint save, at 1 and 2 ranks, on the first save of a run and on a later one: the
# job exits with status 2 (never a signal: HDF5 used to crash at exit, status 139) saying which checkpoint
# failed and that the previous ones are untouched; the checkpoint directory holds exactly what it held
# before, every checkpoint in it verifies, no step_*.tmp is left, and the run resumes from it.
# The disk is a file-size limit (ulimit -f, SIGXFSZ ignored: writes fail with EFBIG), which needs no root;
# the later-save cases use a small tmpfs instead where this machine lets us mount one (a real ENOSPC in a
# process that has saved before), else the limit on a run resumed from an earlier save.
# Bound: every run is under `timeout 120`; the script takes about 30 s on 2 cores.
set -uo pipefail
src=$1 build=$2
source "$src/tests/faults/common.bash"
write_big_model model.json
cleanup() { for d in disk_*; do mountpoint -q "$d" 2>/dev/null && umount "$d"; done; }
trap cleanup EXIT
cleanup; rm -rf ck_* disk_* out_* ./*.log

for n in 1 2; do
  layout=(--parallel.tp "$n")   # tp=2: each rank file is half a checkpoint (~5 MB)

  # First save: 4 MiB per file is less than one rank file.
  ck=ck_first_$n
  (ulimit -f 4096; iris "$n" "${layout[@]}" --train.steps 4 --checkpoint.dir $ck --checkpoint.every 2 \
     --output.dir out_first_$n >first_$n.log 2>&1)
  expect_exit "first save, $n rank(s)" 2 $? first_$n.log \
    "checkpoint at step 2 into $ck failed .*the previous checkpoints are untouched"
  expect_dir "first save, $n rank(s)" $ck "iris.lock"

  # A later save.
  ck=disk_$n
  if mount_small_disk $ck $((n == 1 ? 24 : 14))m; then
    how="a tmpfs full after $((n == 1 ? 2 : 1)) checkpoint(s)"
    last=$((n == 1 ? 4 : 2))
    iris "$n" "${layout[@]}" --train.steps 8 --checkpoint.dir $ck --checkpoint.every 2 --output.dir out_later_$n \
      >later_$n.log 2>&1
    rc=$?
  else
    how="ulimit -f on a run resumed from step 2"
    last=2
    iris "$n" "${layout[@]}" --train.steps 2 --checkpoint.dir $ck --output.dir out_later0_$n >later0_$n.log 2>&1 \
      || { echo "FAIL later save, $n rank(s): the first run failed"; tail later0_$n.log; fail=1; continue; }
    (ulimit -f 4096; iris "$n" "${layout[@]}" --train.steps 8 --checkpoint.dir $ck --checkpoint.every 2 \
       --checkpoint.load latest --output.dir out_later_$n >later_$n.log 2>&1)
    rc=$?
  fi
  expect_exit "later save, $n rank(s), $how" 2 $rc later_$n.log \
    "checkpoint at step $((last + 2)) into $ck failed .*the previous checkpoints are untouched"
  entries=$(for s in $(seq 2 2 $last); do printf 'step_%08d ' "$s"; done)
  expect_dir "later save, $n rank(s)" $ck "iris.lock latest ${entries% }"
  [ "$(cat $ck/latest)" = "$(printf 'step_%08d' $last)" ] || { echo "FAIL later save, $n rank(s): latest is $(cat $ck/latest)"; fail=1; }
  expect_resume "resume after the full disk, $n rank(s)" "$n" "$ck/step_$(printf '%08d' $last)" $last "${layout[@]}" \
    --train.steps $((last + 1)) --output.dir out_resume_$n
done
# Only one rank's write fails (dp=2: rank 0's file holds the weights and half the moments, ~6.8 MB; rank 1's
# only its half of the moments, ~3.4 MB; the limit is 5 MB): the other rank must not wait for it forever.
(ulimit -f 5000; iris 2 --train.steps 2 --checkpoint.dir ck_one --checkpoint.every 2 --output.dir out_one >one.log 2>&1)
expect_exit "one rank's save fails, 2 ranks (dp=2)" 2 $? one.log \
  "checkpoint at step 2 into ck_one failed \(on rank\(s\) 0\).*the previous checkpoints are untouched"
expect_dir "one rank's save fails, 2 ranks (dp=2)" ck_one "iris.lock"
exit $fail
