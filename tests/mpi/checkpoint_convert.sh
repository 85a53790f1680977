#!/usr/bin/env bash
# iris-convert on a trainer checkpoint: `reshard` (2,2,1) → (1,2,2) offline, optimizer state included,
# then a resume from the resharded copy at (1,2,2) gives bit-identical losses and weights to a resume at
# (1,2,2) straight from the original (the same reshard done on load). `verify` exits 0 on the good
# checkpoints and non-zero on a copy with one flipped byte, a truncated copy and a copy missing a file.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
convert=$build/bin/iris-convert
write_tiny_model model.json true
common=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2
        --optim.decay_steps 14 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3 --train.log_every 100
        --output.save_weights true --parallel.bucket_mb 0.01)
rm -rf first ckpt resharded direct offline bad_* tail
mpi 4 "$build/bin/iris-train" "${common[@]}" --parallel.tp 2 --parallel.pp 2 --train.grad_accum 4 --train.steps 10 \
  --output.dir first --checkpoint.dir ckpt >first.log 2>&1
"$convert" reshard --checkpoint ckpt --out resharded --tp 1 --pp 2 --dp 2
"$convert" verify --checkpoint resharded
"$convert" inspect --checkpoint resharded >inspect.txt
grep -q "layout tp=1 pp=2 dp=2, optimizer state: yes" inspect.txt
for run in direct offline; do
  from=ckpt; [ $run = offline ] && from=resharded
  mpi 4 "$build/bin/iris-train" "${common[@]}" --parallel.tp 1 --parallel.pp 2 --train.grad_accum 2 --train.steps 14 \
    --output.dir $run --checkpoint.load "$from" >$run.log 2>&1
  grep -q "at step 10" $run.log || { echo "FAIL $run: did not resume at step 10"; exit 1; }
done
/usr/bin/python3 "$src/tests/mpi/compare_runs.py" direct offline 0 0
fail=0
"$convert" verify --checkpoint ckpt || { echo "FAIL verify rejected a good checkpoint"; fail=1; }
step=ckpt/step_00000010
cp -r $step bad_flip && f=bad_flip/rank_00002.h5 && size=$(stat -c %s $f) &&
  /usr/bin/python3 -c "import sys; p, o = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p,'rb').read()); b[o] ^= 0x20; open(p,'wb').write(b)" $f $((size / 2))
cp -r $step bad_trunc && truncate -s -100 bad_trunc/rank_00001.h5
cp -r $step bad_missing && rm bad_missing/rank_00003.h5
for bad in bad_flip bad_trunc bad_missing; do
  if "$convert" verify --checkpoint $bad >$bad.log 2>&1; then echo "FAIL verify accepted $bad"; fail=1
  else echo "ok   verify $bad: $(grep -m1 -E 'PROBLEM|error' $bad.log | cut -c1-200)"; fi
done
exit $fail
