#!/usr/bin/env bash
# The streamed checkpoint path on the CPU: the trainer moves its state through a bounded staging buffer
# (IRIS_STAGING_BYTES, the test hook; default 64 MiB, more than any tensor here). With 4 KiB (1,024
# floats: many pieces per tensor, pieces cut at ZeRO-1 shard edges) and, at (1,1,1), with 12 bytes (3
# floats: odd piece ends; one rank, so no broadcast per piece), every checkpoint rank file and weights file must equal the one-piece run's byte for byte
# (cmp), and a resume through the tiny buffer must stay bit-exact (tolerance 0) against a straight run.
# Layouts (1,1,1), (2,2,2) and, tied embedding, (1,2,2). Last, model.hf_dir through 4 KiB: Hugging Face
# weights exported (fp32) from a checkpoint start the same run, bit for bit, as model.init_checkpoint does.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_tiny_model untied.json false
write_tiny_model tied.json true
fail=0
same_files() {  # dir a, dir b: every *.h5 and *.safetensors under a equals b's, and there is at least one
  local a=$1 b=$2 n=0 f
  while IFS= read -r f; do
    n=$((n + 1))
    cmp -s "$a/$f" "$b/$f" || { echo "FAIL: $a/$f and $b/$f differ"; return 1; }
  done < <(cd "$a" && find . \( -name '*.h5' -o -name '*.safetensors' \) | sort)
  [ "$n" -gt 0 ] || { echo "FAIL: no files under $a"; return 1; }
  echo "$a = $b: $n files byte-identical"
}
for spec in "untied 1 1 1" "untied 2 2 2" "tied 1 2 2"; do
  read -r model tp pp dp <<<"$spec"
  tag="${model}_${tp}${pp}${dp}" n=$((tp * pp * dp))
  args=(--model.config "$model.json" --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2
        --train.steps 8 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.grad_clip 1.0 --train.log_every 100
        --output.save_weights true --parallel.bucket_mb 0.01 --parallel.tp "$tp" --parallel.pp "$pp"
        --train.grad_accum $((4 / dp)) --checkpoint.every 4)
  stagings=(default 4096)
  [ "$n" = 1 ] && stagings+=(12)
  for staging in "${stagings[@]}"; do
    rm -rf "run_${tag}_$staging" "ckpt_${tag}_$staging"
    env_args=()
    [ "$staging" = default ] || env_args=(IRIS_STAGING_BYTES="$staging")
    env "${env_args[@]}" mpirun --oversubscribe -np "$n" "$build/bin/iris-train" "${args[@]}" \
      --output.dir "run_${tag}_$staging" --checkpoint.dir "ckpt_${tag}_$staging" >"run_${tag}_$staging.log" 2>&1 \
      || { echo "FAIL $tag staging $staging: run failed"; tail "run_${tag}_$staging.log"; fail=1; continue; }
    grep -q "checkpoint staging" "run_${tag}_$staging.log" || { echo "FAIL $tag: no staging in the start-up lines"; fail=1; }
  done
  for staging in "${stagings[@]:1}"; do
    same_files "ckpt_${tag}_default" "ckpt_${tag}_$staging" || fail=1
    same_files "run_${tag}_default/weights" "run_${tag}_$staging/weights" || fail=1
  done
  # Resume through 4 KiB: stop after the step-4 checkpoint (rank 0 exits at the start of step 5), resume.
  rm -rf "first_$tag" "resumed_$tag" "ckpt_resume_$tag" "tail_$tag"
  if IRIS_STAGING_BYTES=4096 IRIS_FAULT=0:5:exit mpi "$n" "$build/bin/iris-train" "${args[@]}" --output.dir "first_$tag" \
       --checkpoint.dir "ckpt_resume_$tag" >"first_$tag.log" 2>&1; then
    echo "FAIL $tag: the interrupted run did not stop"; fail=1; continue
  fi
  IRIS_STAGING_BYTES=4096 mpi "$n" "$build/bin/iris-train" "${args[@]}" --output.dir "resumed_$tag" \
      --checkpoint.dir "ckpt_resume_$tag" --checkpoint.load latest >"resumed_$tag.log" 2>&1 \
    || { echo "FAIL $tag: resume failed"; tail "resumed_$tag.log"; fail=1; continue; }
  grep -q "resumed from .*step_00000004 at step 4" "resumed_$tag.log" || { echo "FAIL $tag: no resume line"; fail=1; }
  mkdir -p "tail_$tag" && ln -s "../run_${tag}_default/weights" "tail_$tag/weights"
  tail -n 4 "run_${tag}_default/metrics.jsonl" >"tail_$tag/metrics.jsonl"
  "${IRIS_PYTHON:-/usr/bin/python3}" "$src/tests/mpi/compare_runs.py" "tail_$tag" "resumed_$tag" 0 0 \
    || { echo "FAIL $tag: the resume through 4 KiB is not bit-exact"; fail=1; }
  # The step-8 checkpoint of the resumed run is the straight run's, byte for byte.
  for f in $(cd "ckpt_${tag}_default/step_00000008" && ls *.h5); do
    cmp -s "ckpt_${tag}_default/step_00000008/$f" "ckpt_resume_$tag/step_00000008/$f" \
      || { echo "FAIL $tag: resumed step-8 $f differs from the straight run's"; fail=1; }
  done
done
rm -rf hf_export from_hf from_ckpt
"$build/bin/iris-convert" iris-to-hf --checkpoint ckpt_untied_222_default --out hf_export --dtype fp32 >convert.log 2>&1 \
  || { echo "FAIL iris-to-hf"; tail convert.log; fail=1; }
for start in hf ckpt; do
  if [ $start = hf ]; then from=(--model.hf_dir hf_export); else from=(--model.init_checkpoint ckpt_untied_222_default); fi
  IRIS_STAGING_BYTES=4096 mpi 8 "$build/bin/iris-train" --model.config untied.json --data.path "$build/data/sample_text" \
    --train.seq_len 16 --train.micro_batch 2 --train.steps 2 --optim.lr 1e-2 --parallel.tp 2 --parallel.pp 2 \
    --train.grad_accum 2 --output.save_weights true "${from[@]}" --output.dir "from_$start" >"from_$start.log" 2>&1 \
    || { echo "FAIL run from $start"; tail "from_$start.log"; fail=1; }
done
"${IRIS_PYTHON:-/usr/bin/python3}" "$src/tests/mpi/compare_runs.py" from_ckpt from_hf 0 0 \
  || { echo "FAIL: model.hf_dir through 4 KiB does not start where model.init_checkpoint does"; fail=1; }
same_files from_ckpt/weights from_hf/weights || fail=1
[ $fail = 0 ] && echo "streamed checkpoints: byte-identical files and bit-exact resume at every layout"
exit $fail
