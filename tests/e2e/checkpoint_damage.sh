#!/usr/bin/env bash
# Atomicity and damage, single rank: kill -9 in the middle of a save leaves the previous checkpoint
# loadable and `auto` picks it; a truncated or missing rank file, a checkpoint of another model or of
# another vocab size each fail to load with a message naming what is wrong; a save that hits a file-size
# limit (a full disk) fails cleanly and leaves the previous checkpoint intact.
# (A flipped byte inside a dataset is tested in tests/unit/test_io_checkpoint.cpp, which can find the chunk.)
set -uo pipefail
src=$1 build=$2
export OMP_NUM_THREADS=1
fail=0
model() {  # path hidden vocab
  cat >"$1" <<JSON
{"model_type": "llama", "hidden_size": $2, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": $3, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
}
model m.json 32 2048
model other_hidden.json 64 2048
model other_vocab.json 32 4096
train() { "$build/bin/iris-train" --model.config "${MODEL:-m.json}" --data.path "$build/data/sample_text" --train.seq_len 16 \
            --train.micro_batch 2 --train.log_every 100 --optim.warmup_steps 2 "$@"; }
expect_failure() {  # name, expected text, args...
  local name=$1 text=$2; shift 2
  if train "$@" >"$name.log" 2>&1; then echo "FAIL $name: exit status 0"; fail=1; return; fi
  if ! grep -qF -- "$text" "$name.log"; then echo "FAIL $name: message lacks '$text':"; tail -5 "$name.log"; fail=1; return; fi
  echo "ok   $name: $(grep -m1 -F -- "$text" "$name.log")"
}
rm -rf ck out_* *.log trunc missing

# 1. kill -9 (SIGKILL on rank 0 via the IRIS_CHECKPOINT_KILL hook) after the step-10 rank file is
#    written but before its manifest and rename.
train --train.steps 10 --checkpoint.dir ck --checkpoint.every 5 --output.dir out_a >a.log 2>&1 || { echo "FAIL first run"; exit 1; }
rm -rf ck/step_00000010 && echo step_00000005 >ck/latest   # as if step 10 had never been saved
IRIS_CHECKPOINT_KILL=10 train --train.steps 10 --checkpoint.dir ck --checkpoint.every 5 --checkpoint.load auto \
  --output.dir out_b >b.log 2>&1
status=$?
[ $status -eq 137 ] || { echo "FAIL kill: exit status $status, expected 137 (SIGKILL)"; fail=1; }
[ -d ck/step_00000010.tmp ] && [ ! -e ck/step_00000010 ] || { echo "FAIL kill: expected a partial step_00000010.tmp only"; ls ck; fail=1; }
[ "$(cat ck/latest)" = step_00000005 ] || { echo "FAIL kill: latest changed"; fail=1; }
train --train.steps 10 --checkpoint.dir ck --checkpoint.load auto --output.dir out_c >c.log 2>&1 || { echo "FAIL kill: auto resume failed"; tail c.log; fail=1; }
grep -q "resumed from ck/step_00000005 at step 5" c.log && echo "ok   kill: auto resumed from step 5" || { echo "FAIL kill: auto did not pick step 5"; fail=1; }
[ ! -e ck/step_00000010.tmp ] && [ -f ck/step_00000010/manifest.json ] || { echo "FAIL kill: the next save did not replace the partial one"; fail=1; }

# 2. Damaged checkpoints (copies of step 5).
cp -r ck/step_00000005 trunc && truncate -s -1000 trunc/rank_00000.h5
expect_failure truncated "rank_00000.h5 has" --train.steps 10 --checkpoint.load trunc --output.dir out_t
cp -r ck/step_00000005 missing && rm missing/rank_00000.h5
expect_failure missing_rank "rank file rank_00000.h5 is missing" --train.steps 10 --checkpoint.load missing --output.dir out_m
MODEL=other_hidden.json expect_failure other_model "hidden_size = 32 there but 64" --train.steps 10 \
  --checkpoint.load ck/step_00000005 --output.dir out_o
MODEL=other_vocab.json expect_failure other_vocab "vocab_size = 2048 there but 4096" --train.steps 10 \
  --checkpoint.load ck/step_00000005 --output.dir out_v
expect_failure not_a_checkpoint "is not a checkpoint" --train.steps 10 --checkpoint.load ck/nothing --output.dir out_n
expect_failure past_steps "past train.steps" --train.steps 3 --checkpoint.load ck/step_00000005 --output.dir out_p

# 3. Full disk. A 10 MiB-per-checkpoint model; the disk is a 16 MiB tmpfs when this machine lets us
#    mount one (room for one checkpoint, not two), else a 4 MiB file-size limit with SIGXFSZ ignored,
#    so the write fails with EFBIG as on a full disk instead of killing the process.
model big.json 128 2048
sed -i 's/"intermediate_size": 64/"intermediate_size": 256/' big.json
rm -rf full out_f*; mkdir -p full
limit=unlimited
if mount -t tmpfs -o size=16m tmpfs full 2>/dev/null; then trap 'umount full' EXIT; how="a 16 MiB tmpfs"
else limit=4096; how="ulimit -f 4096"; fi
MODEL=big.json train --train.steps 5 --checkpoint.dir full --output.dir out_f1 >f1.log 2>&1 || { echo "FAIL full: first run"; tail f1.log; exit 1; }
(trap '' XFSZ; ulimit -f $limit; MODEL=big.json train --train.steps 10 --checkpoint.dir full --checkpoint.load latest \
   --output.dir out_f2 >f2.log 2>&1)
status=$?
if [ $status -eq 0 ]; then echo "FAIL full ($how): exit status 0"; fail=1
elif ! grep -q "checkpoint at step 10 into full failed" f2.log; then echo "FAIL full ($how): no clear message"; tail -5 f2.log; fail=1
else echo "ok   full ($how): $(grep -m1 -o 'checkpoint at step 10 into full failed.\{0,160\}' f2.log)"; fi
[ "$(ls full | grep -v '^iris.lock$' | tr '\n' ' ')" = "latest step_00000005 " ] || { echo "FAIL full: left $(ls full | tr '\n' ' ')"; fail=1; }
MODEL=big.json train --train.steps 6 --checkpoint.load full/step_00000005 --output.dir out_f3 >f3.log 2>&1 \
  && grep -q "at step 5" f3.log && echo "ok   full: previous checkpoint still loads" || { echo "FAIL full: previous checkpoint unusable"; fail=1; }
exit $fail
