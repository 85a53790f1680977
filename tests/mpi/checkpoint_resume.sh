#!/usr/bin/env bash
# Bit-exact resume: 20 steps straight vs 10 steps, a stop (rank 0 exits at the start of step 11 via
# IRIS_FAULT, after the step-10 checkpoint), a resume with --checkpoint.load latest and 10 more steps.
# Losses of steps 11..20 and the final weights must be bit-identical (tolerance 0), at (1,1,1) and (2,2,2).
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model model.json false
common=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2
        --train.steps 20 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3 --train.log_every 100
        --output.save_weights true --parallel.bucket_mb 0.01)
fail=0
for layout in 1,1,1 2,2,2; do
  IFS=, read -r tp pp dp <<<"$layout"
  n=$((tp * pp * dp)) tag="${tp}${pp}${dp}"
  args=("${common[@]}" --parallel.tp "$tp" --parallel.pp "$pp" --train.grad_accum $((4 / dp)))
  rm -rf "straight_$tag" "first_$tag" "resumed_$tag" "ckpt_$tag" "tail_$tag"
  mpi "$n" "$build/bin/iris-train" "${args[@]}" --output.dir "straight_$tag" >"straight_$tag.log" 2>&1
  if IRIS_FAULT=0:11:exit mpi "$n" "$build/bin/iris-train" "${args[@]}" --output.dir "first_$tag" \
       --checkpoint.dir "ckpt_$tag" --checkpoint.every 10 >"first_$tag.log" 2>&1; then
    echo "FAIL $layout: the interrupted run did not stop"; fail=1; continue
  fi
  [ "$(cat "ckpt_$tag/latest")" = step_00000010 ] || { echo "FAIL $layout: latest is not step_00000010"; fail=1; continue; }
  mpi "$n" "$build/bin/iris-train" "${args[@]}" --output.dir "resumed_$tag" --checkpoint.dir "ckpt_$tag" \
      --checkpoint.load latest >"resumed_$tag.log" 2>&1 || { echo "FAIL $layout: resume failed"; tail "resumed_$tag.log"; fail=1; continue; }
  grep -q "resumed from .*step_00000010 at step 10" "resumed_$tag.log" || { echo "FAIL $layout: no resume line"; fail=1; }
  # The straight run's steps 11..20 with its final weights, against the resumed run, tolerance 0.
  mkdir -p "tail_$tag" && ln -s "../straight_$tag/weights" "tail_$tag/weights"
  tail -n 10 "straight_$tag/metrics.jsonl" >"tail_$tag/metrics.jsonl"
  /usr/bin/python3 "$src/tests/mpi/compare_runs.py" "tail_$tag" "resumed_$tag" 0 0 || { echo "FAIL $layout: not bit-exact"; fail=1; }
  # The first run's steps 1..10 are the straight run's too.
  /usr/bin/python3 - "straight_$tag/metrics.jsonl" "first_$tag/metrics.jsonl" <<'PY' || { echo "FAIL $layout: first half differs"; fail=1; }
import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])][:10]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
sys.exit(0 if a == b else 1)
PY
done
exit $fail
