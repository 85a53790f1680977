#!/usr/bin/env bash
# Reshard on load: a checkpoint saved at (tp,pp,dp) = (2,2,1) after 10 steps resumes at (1,1,4), (4,1,2)
# and (1,2,2); the losses of steps 11..20 stay within relative 1e-5 of the straight (2,2,1) run and the
# final weights within relative 1e-4 (fp32 sums in another order). Global batch 8 in every layout.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
# Heads and KV heads divisible by 4 so tp=4 works.
cat >model.json <<JSON
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
 "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
common=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2
        --train.steps 20 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3 --train.log_every 100
        --output.save_weights true --parallel.bucket_mb 0.01)
rm -rf straight first ckpt tail
mpi 4 "$build/bin/iris-train" "${common[@]}" --parallel.tp 2 --parallel.pp 2 --train.grad_accum 4 --output.dir straight >straight.log 2>&1
if IRIS_FAULT=0:11:exit mpi 4 "$build/bin/iris-train" "${common[@]}" --parallel.tp 2 --parallel.pp 2 --train.grad_accum 4 \
     --output.dir first --checkpoint.dir ckpt --checkpoint.every 10 >first.log 2>&1; then
  echo "FAIL: the interrupted run did not stop"; exit 1
fi
mkdir -p tail && ln -s ../straight/weights tail/weights
tail -n 10 straight/metrics.jsonl >tail/metrics.jsonl
fail=0
for layout in 1,1,4 4,1,2 1,2,2; do
  IFS=, read -r tp pp dp <<<"$layout"
  out="resumed_${tp}${pp}${dp}"
  rm -rf "$out"
  if ! mpi $((tp * pp * dp)) "$build/bin/iris-train" "${common[@]}" --parallel.tp "$tp" --parallel.pp "$pp" \
       --train.grad_accum $((4 / dp)) --output.dir "$out" --checkpoint.load ckpt/step_00000010 >"$out.log" 2>&1; then
    echo "FAIL $layout: resume failed"; tail -20 "$out.log"; fail=1; continue
  fi
  grep -q "at step 10" "$out.log" || { echo "FAIL $layout: did not resume at step 10"; fail=1; }
  /usr/bin/python3 "$src/tests/mpi/compare_runs.py" tail "$out" 1e-5 1e-4 || { echo "FAIL $layout"; fail=1; }
done
exit $fail
