#!/usr/bin/env bash
# SFT at every layout equals one rank: the medalpaca-formatted sample QA data (rows train different
# numbers of answer tokens), six steps of a tiny model, give per-step losses and validation losses
# within relative 1e-5 of the single-rank run and final weights within 1e-4, for dp 1/2/4, other
# micro-batch/grad_accum splits of the same global batch of 8 rows, tp 2, pp 2 and (2,2,2); packed and
# unpacked. Then SFT resume: 6 steps straight == 3 steps, stop, resume from the checkpoint (bit-exact).
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
rm -rf data && mkdir data
tokenize_sample_sft data/qa
common=(--model.config model.json --train.task sft --data.path data/qa --data.split 90,10 --eval.every 2
        --eval.batches 2 --train.steps 6 --optim.lr 1e-2 --optim.warmup_steps 2
        --optim.min_lr 1e-3 --train.log_every 100 --output.save_weights true --parallel.bucket_mb 0.01)
fail=0
run() { run_iris "$1" "$2" "${common[@]}" "${@:3}"; }  # name, ranks, args...
# Samples are 60..200 tokens: rows of 256 hold about two when packed; unpacked rows of 128 truncate some.
for packing in true false; do
  ref=ref_$packing seq=$([ $packing = true ] && echo 256 || echo 128)
  run "$ref" 1 --sft.packing $packing --train.seq_len $seq --train.micro_batch 2 --train.grad_accum 4 || continue
  rows=$(grep -o "[0-9]* SFT samples in [0-9]* rows" "$ref.log" | head -1)
  echo "$ref: $rows"
  read -r samples _ _ _ nrows _ <<<"$rows"
  if [ $packing = true ]; then [ "$nrows" -lt "$samples" ] || { echo "FAIL $ref: nothing packed ($rows)"; fail=1; }
  else [ "$nrows" = "$samples" ] || { echo "FAIL $ref: unpacked rows ($rows)"; fail=1; }; fi
  # tp pp dp micro_batch grad_accum
  for layout in 1,1,2,2,2 1,1,4,2,1 1,1,1,1,8 1,1,2,4,1 2,1,1,2,4 1,2,1,2,4 2,2,2,2,2; do
    IFS=, read -r tp pp dp mb ga <<<"$layout"
    out="run_${packing}_${tp}${pp}${dp}_${mb}x${ga}"
    run "$out" $((tp * pp * dp)) --sft.packing $packing --train.seq_len $seq --parallel.tp "$tp" --parallel.pp "$pp" \
      --train.micro_batch "$mb" --train.grad_accum "$ga" || continue
    /usr/bin/python3 "$src/tests/mpi/compare_runs.py" "$ref" "$out" 1e-5 1e-4 || { echo "FAIL $out"; fail=1; }
  done
done
# Validation losses are there (steps 2, 4, 6), differ from the training losses, and SFT learns.
/usr/bin/python3 - ref_true/metrics.jsonl <<'PY' || fail=1
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
val = [x["step"] for x in m if "val_loss" in x]
assert val == [2, 4, 6], f"val_loss at steps {val}, expected [2, 4, 6]"
assert all(x["val_loss"] != x["loss"] for x in m if "val_loss" in x), "val_loss equals the training loss"
PY
python_masks() {  # the trained-token count differs between rows: checked from the dataset itself
  /usr/bin/python3 - data/qa_loss_mask <<'PY'
import struct, sys
p = sys.argv[1]
idx = open(p + ".idx", "rb").read()
n = struct.unpack("<Q", idx[18:26])[0]
lengths = struct.unpack(f"<{n}i", idx[34:34 + 4 * n])
data = open(p + ".bin", "rb").read()
off, trained = 0, []
for L in lengths:
    trained.append(sum(data[off:off + L])); off += L
assert len(set(trained)) > 10, f"samples train too few distinct token counts: {sorted(set(trained))}"
print(f"trained tokens per sample: {min(trained)}..{max(trained)}")
PY
}
python_masks || fail=1

# Resume: a run stopped at the start of step 4 (IRIS_FAULT) after its step-3 checkpoint, resumed to
# step 6, against 6 steps straight (tolerance 0).
for layout in 1,1,1 1,2,2; do
  IFS=, read -r tp pp dp <<<"$layout"
  tag=${tp}${pp}${dp}
  args=(--train.seq_len 256 --parallel.tp "$tp" --parallel.pp "$pp" --train.micro_batch 2 --train.grad_accum $((4 / dp)))
  rm -rf "ckpt_$tag" "tail_$tag"
  run "straight_$tag" $((tp * pp * dp)) "${args[@]}" || continue
  if IRIS_FAULT=0:4:exit mpi $((tp * pp * dp)) "$build/bin/iris-train" "${common[@]}" "${args[@]}" \
       --output.dir "first_$tag" --checkpoint.dir "ckpt_$tag" --checkpoint.every 3 >"first_$tag.log" 2>&1; then
    echo "FAIL resume $tag: the interrupted run did not stop"; fail=1; continue
  fi
  run "resumed_$tag" $((tp * pp * dp)) "${args[@]}" --checkpoint.dir "ckpt_$tag" --checkpoint.load latest || continue
  grep -q "resumed from .*step_00000003 at step 3 (24 samples consumed" "resumed_$tag.log" \
    || { echo "FAIL resume $tag: no resume line"; grep resumed "resumed_$tag.log"; fail=1; }
  mkdir -p "tail_$tag" && ln -s "../straight_$tag/weights" "tail_$tag/weights"
  tail -n 3 "straight_$tag/metrics.jsonl" >"tail_$tag/metrics.jsonl"
  /usr/bin/python3 "$src/tests/mpi/compare_runs.py" "tail_$tag" "resumed_$tag" 0 0 || { echo "FAIL resume $tag"; fail=1; }
done
[ $fail = 0 ] && echo "PASS sft_layouts"
exit $fail
