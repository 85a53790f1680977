#!/usr/bin/env bash
# The lock on checkpoint.dir: while run A trains, a second run on the same directory is refused at start
# (exit 2, at 1 and at 2 ranks, naming A's host and PID) and A goes on; after kill -9 of A the next run
# takes the lock over with a warning and resumes; a lock file still flock-ed by some process while its
# record names a process that is gone (a straggler of an ended job) is taken over too. A's checkpoints
# verify throughout. Bound: every run is under `timeout 60`; the script takes about 20 s on 2 cores.
set -uo pipefail
src=$1 build=$2
source "$src/tests/faults/common.bash"
export BOUND=60
cat >model.json <<JSON
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
rm -rf ck out_* ./*.log
holder_pid() { sed -n 's/^pid=//p' ck/iris.lock 2>/dev/null; }
verify_latest() {  # name
  "$build/bin/iris-convert" verify --checkpoint ck >"$1.verify.log" 2>&1 && echo "ok   $1: ck/$(cat ck/latest) verifies" \
    || { echo "FAIL $1: the latest checkpoint does not verify"; cat "$1.verify.log"; fail=1; }
}

iris 1 --train.steps 1000000 --checkpoint.dir ck --checkpoint.every 200 --output.dir out_a >a.log 2>&1 &
for _ in $(seq 100); do [ -n "$(holder_pid)" ] && [ -e ck/latest ] && break; sleep 0.2; done
a=$(holder_pid)
[ -n "$a" ] && kill -0 "$a" 2>/dev/null || { echo "FAIL: run A never took the lock"; cat a.log; exit 1; }
for n in 1 2; do
  iris "$n" --train.steps 10 --checkpoint.dir ck --checkpoint.load auto --output.dir out_b$n >b$n.log 2>&1
  expect_exit "second run refused, $n rank(s)" 2 $? b$n.log "checkpoint.dir ck is in use by another run \(host [^,]+, PID $a,"
done
kill -0 "$a" 2>/dev/null && echo "ok   run A (PID $a) still trains" || { echo "FAIL: run A died"; fail=1; }

kill -9 "$a"; wait
[ "$(holder_pid)" = "$a" ] || { echo "FAIL: the killed run's record is gone"; fail=1; }
verify_latest "after kill -9"
step=$(sed 's/step_0*//' ck/latest)
iris 1 --train.steps $((step + 2)) --checkpoint.dir ck --checkpoint.load auto --output.dir out_c >c.log 2>&1
expect_exit "stale lock of a killed run taken over" 0 $? c.log \
  "took over the lock on checkpoint.dir ck left by a run that ended without releasing it \(host [^,]+, PID $a,"
grep -q "resumed from ck/step_" c.log || { echo "FAIL: run C did not resume"; fail=1; }
[ ! -s ck/iris.lock ] && echo "ok   run C released the lock (empty record)" || { echo "FAIL: run C left a record"; fail=1; }

# A straggler: some process still holds the flock, the record names a PID that does not exist.
flock ck/iris.lock sleep 60 >/dev/null 2>&1 &
straggler=$!
for _ in $(seq 50); do flock -n ck/iris.lock true 2>/dev/null || break; sleep 0.1; done
dead=999999; while kill -0 $dead 2>/dev/null; do dead=$((dead - 1)); done
printf 'host=%s\npid=%s\nslurm_job_id=\nstarted=2026-01-01T00:00:00Z\n' "$(hostname)" $dead >ck/iris.lock
step=$(sed 's/step_0*//' ck/latest)
iris 1 --train.steps $((step + 2)) --checkpoint.dir ck --checkpoint.load auto --output.dir out_d >d.log 2>&1
expect_exit "flock held, holder gone: taken over" 0 $? d.log \
  "took over the lock on checkpoint.dir ck: its holder \(host [^,]+, PID $dead,.*is gone but the lock was still held"
kill $(pgrep -P "$straggler") "$straggler" 2>/dev/null; wait
verify_latest "after the takeovers"
exit $fail
