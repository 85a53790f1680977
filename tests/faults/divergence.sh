#!/usr/bin/env bash
# Divergence, at 1 and 2 ranks (dp=2): a run resumed from a good checkpoint with optim.lr 1e4 goes
# non-finite; every rank stops at the same step with exit status 3 ("diverged", not 0 and not an abort),
# the message says which limit was exceeded and names the checkpoint to resume from with a lower LR; the
# checkpoint directory is unchanged (nothing saved after the trouble) and the suggested resume finishes.
# Bound: every run is under `timeout 120`; the script takes about 15 s on 2 cores.
set -uo pipefail
src=$1 build=$2
source "$src/tests/faults/common.bash"
write_big_model model.json
rm -rf ck_* out_* ./*.log

for n in 1 2; do
  ck=ck_$n
  iris "$n" --train.steps 4 --checkpoint.dir $ck --checkpoint.every 2 --output.dir out_good_$n >good_$n.log 2>&1 \
    || { echo "FAIL divergence, $n rank(s): the good run failed"; tail good_$n.log; fail=1; continue; }
  iris "$n" --train.steps 60 --checkpoint.dir $ck --checkpoint.every 100 --checkpoint.load latest --optim.lr 1e4 \
    --output.dir out_bad_$n >bad_$n.log 2>&1
  expect_exit "diverged, $n rank(s)" 3 $? bad_$n.log \
    "training diverged at step [0-9]+: .*(consecutive steps|of the last 100 steps).* --checkpoint.load $ck/step_00000004 --optim.lr 1000 "
  # Every rank stopped at the same step (the metrics are rank 0's; the stop line counts the steps).
  steps=$(wc -l <out_bad_$n/metrics.jsonl)
  grep -q "training diverged at step $((4 + steps)):" bad_$n.log \
    || { echo "FAIL diverged, $n rank(s): $steps steps in metrics.jsonl do not end at the stop"; fail=1; }
  ! grep -q "MPI_ABORT" bad_$n.log || { echo "FAIL diverged, $n rank(s): the ranks were aborted, not stopped together"; fail=1; }
  expect_dir "diverged, $n rank(s)" $ck "iris.lock latest step_00000002 step_00000004"
  expect_resume "resume after divergence, $n rank(s)" "$n" $ck/step_00000004 4 --optim.lr 1e-3 --train.steps 6 \
    --output.dir out_resume_$n
done
exit $fail
