#!/usr/bin/env bash
# gpu-check-timeout: 300
# The CUDA backend's state without a host copy: checkpoints and weight exports stream each piece through the
# pinned staging buffer (IRIS_STAGING_BYTES, the test hook; default 64 MiB). Model and settings as
# trainer_cuda.sh's (head size 64). All comparisons are exact (cmp or tolerance 0):
#   1. cuda, 4 steps, a checkpoint every 2: the rank files and weights written through 4 KiB equal those of
#      the default buffer (one piece per tensor), at 1 rank and at pp = 2 × dp = 2 (mpi, 4 ranks on one GPU:
#      the other DP rank's master pieces arrive by broadcast).
#   2. resume on cuda through 4 KiB: stop after the step-2 checkpoint, resume; steps 3-4 and the final
#      weights bit-identical to the straight run.
#   3. CPU state into the GPU: a cpu run saves step 2; a cuda run loads it through 4 KiB (train.steps 2, so
#      no step) and exports its weights: byte-identical to the cpu run's export (the fp32 master is what it
#      loaded), at 1 rank and at pp = 2 × dp = 2.
#   4. GPU state into the CPU: the cpu backend resumes from the cuda run's step-2 checkpoint and trains on.
# Usage: bash trainer_cuda_streamed.sh SRC BUILD from a scratch directory (as trainer_cuda.sh). Exit 77:
# skipped (no GPU), unless IRIS_EXPECT_GPU=1.
set -uo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
python=${IRIS_PYTHON:-python3}
train="$build/bin/iris-train"
cat >model.json <<'JSON'
{"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": true, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
common=(--model.config model.json --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2
        --optim.lr 1e-2 --optim.warmup_steps 2 --train.log_every 1 --optim.grad_clip 1.0 --parallel.bucket_mb 0.01
        --output.save_weights true --parallel.comm mpi)
run() {  # ranks out dp flags...: iris-train into OUT (log OUT.log), global batch 4 micro-batches of 2
  local n=$1 out=$2 dp=$3
  shift 3
  rm -rf "$out"
  mpi "$n" "$train" "${common[@]}" --train.grad_accum $((4 / dp)) --output.dir "$out" "$@" >"$out.log" 2>&1
}
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }
same_files() {  # a b: every *.h5 / *.safetensors under a equals b's (at least one)
  local n=0 f
  while IFS= read -r f; do
    n=$((n + 1)); cmp -s "$1/$f" "$2/$f" || { echo "  $1/$f differs from $2/$f"; return 1; }
  done < <(cd "$1" && find . \( -name '*.h5' -o -name '*.safetensors' \) | sort)
  echo "  $n files"; [ "$n" -gt 0 ]
}
compare_exact() {  # a b: per-step loss and grad_norm identical
  "$python" - "$1" "$2" <<'PY'
import json, sys
a = [(d["step"], d["loss"], d["grad_norm"]) for d in map(json.loads, open(f"{sys.argv[1]}/metrics.jsonl"))]
b = [(d["step"], d["loss"], d["grad_norm"]) for d in map(json.loads, open(f"{sys.argv[2]}/metrics.jsonl"))]
print(f"  {a}\n  {b}")
sys.exit(0 if a == b else 1)
PY
}

if ! run 1 probe 1 --train.device cuda --train.steps 1; then
  if grep -q "no CUDA device is visible" probe.log; then
    if [ "${IRIS_EXPECT_GPU:-0}" != 0 ]; then echo "FAIL: no GPU but IRIS_EXPECT_GPU is set"; cat probe.log; exit 1; fi
    echo "SKIP: $(grep -o 'no CUDA device is visible.*' probe.log | head -n1)"; exit 77
  fi
  echo "FAIL: the probe run failed"; tail -n 30 probe.log; exit 1
fi
grep -h "no host copy\|memory after start-up" probe.log

for layout in "1 1 1" "4 2 2"; do
  read -r n pp dp <<<"$layout"
  tag="pp${pp}dp${dp}"
  flags=(--train.device cuda --parallel.pp "$pp" --train.steps 4 --checkpoint.every 2)
  # 1. streamed through 4 KiB vs one piece per tensor
  run "$n" "cuda_$tag" "$dp" "${flags[@]}" --checkpoint.dir "ckpt_$tag" || { echo "FAIL cuda $tag run"; tail -n 20 "cuda_$tag.log"; fail=1; continue; }
  IRIS_STAGING_BYTES=4096 run "$n" "small_$tag" "$dp" "${flags[@]}" --checkpoint.dir "ckpt_small_$tag" \
    || { echo "FAIL cuda $tag 4 KiB run"; tail -n 20 "small_$tag.log"; fail=1; continue; }
  check "$tag: checkpoints through 4 KiB byte-identical" same_files "ckpt_$tag" "ckpt_small_$tag"
  check "$tag: weights through 4 KiB byte-identical" same_files "cuda_$tag/weights" "small_$tag/weights"
  # 2. resume through 4 KiB
  rm -rf "ckpt_resume_$tag"
  if IRIS_STAGING_BYTES=4096 IRIS_FAULT=0:3:exit run "$n" "first_$tag" "$dp" "${flags[@]}" --checkpoint.dir "ckpt_resume_$tag"; then
    echo "FAIL $tag: the interrupted run did not stop"; fail=1
  elif IRIS_STAGING_BYTES=4096 run "$n" "resumed_$tag" "$dp" "${flags[@]}" --checkpoint.dir "ckpt_resume_$tag" --checkpoint.load latest; then
    mkdir -p "tail_$tag" && tail -n 2 "cuda_$tag/metrics.jsonl" >"tail_$tag/metrics.jsonl"
    check "$tag: resume through 4 KiB, steps 3-4 bit-identical" compare_exact "tail_$tag" "resumed_$tag"
    check "$tag: resume through 4 KiB, final weights byte-identical" same_files "cuda_$tag/weights" "resumed_$tag/weights"
  else
    echo "FAIL $tag: resume"; tail -n 20 "resumed_$tag.log"; fail=1
  fi
  # 3. CPU state → GPU → weight export
  if run "$n" "cpu_$tag" "$dp" --train.device cpu --parallel.pp "$pp" --train.steps 2 --checkpoint.dir "ckpt_cpu_$tag"; then
    IRIS_STAGING_BYTES=4096 run "$n" "loaded_$tag" "$dp" --train.device cuda --parallel.pp "$pp" --train.steps 2 \
      --checkpoint.load "ckpt_cpu_$tag/step_00000002" \
      && check "$tag: cpu checkpoint loaded on cuda exports the cpu's weights byte for byte" \
           same_files "cpu_$tag/weights" "loaded_$tag/weights" \
      || { echo "FAIL $tag: cuda load of the cpu checkpoint"; tail -n 20 "loaded_$tag.log"; fail=1; }
  else
    echo "FAIL $tag: cpu run"; tail -n 20 "cpu_$tag.log"; fail=1
  fi
done
# 4. GPU state → CPU
check "cpu resumes from the cuda checkpoint" run 1 cpu_from_cuda 1 --train.device cpu --train.steps 4 \
  --checkpoint.load "ckpt_pp1dp1/step_00000002"
grep -q "resumed from .*step_00000002 at step 2" cpu_from_cuda.log || { echo "FAIL no resume line in cpu_from_cuda.log"; fail=1; }
exit $fail
