#!/usr/bin/env bash
# gpu-check-timeout: 420
# The trainer's GPU path (--train.device cuda) on the tiny model (tests/mpi/common.bash), 5 steps:
#   1. cuda vs cpu, same seed and data: per-step loss, grad norm and validation loss within bf16 tolerance
#      (below); both runs must learn (loss drops by > 0.05) and cuda's drop over the 5 steps must be within
#      25% of cpu's, so a dead or wrong update cannot pass.
#   2. two cuda runs with the same seed: identical metrics (the kernels are deterministic).
#   3. checkpoint/resume on cuda: stop after the step-3 checkpoint (IRIS_FAULT), resume, steps 4-5 and the
#      final weights bit-identical to the straight run (the checkpoint holds the fp32 master and moments;
#      the resumed bf16 weights are their round-to-nearest-even cast, as AdamW's bf16 output is).
#   4. --parallel.comm nccl at tp = pp = dp = 1 (skipped when the build has no NCCL): identical to 2.
#   5. pp = 2 × dp = 2 with --parallel.comm mpi, 4 ranks on one GPU: the single-rank cuda run within
#      the layout tolerance (below).
#   6. tp = 2 × dp = 2 likewise, within the cuda-vs-cpu tolerance (TP moves bf16 rounding points).
#   7. --train.recompute full: identical to none.
#   8. --parallel.overlap_grad_reduce true at pp = 2 × dp = 2: identical to 5 (which does not), with
#      buckets issued during the backward.
#   9. --train.grad_dtype bf16 vs the fp32-gradient cuda run (1): within the cuda-vs-cpu tolerance, it
#      learns, its loss drop within 25% of the fp32 run's, and its flat device buffers are smaller.
#  10. bf16 gradients at pp = 2 × dp = 2 (mpi; the tied embedding's gradient is all-reduced between the
#      stages through fp32) vs the single-rank bf16 run (9), within the cuda-vs-cpu tolerance.
#  11. IRIS_ATTENTION=mma (the opt-in attention kernels) vs 1, within the cuda-vs-cpu tolerance.
# Tolerances. cuda vs cpu: relative 2e-2 on loss and validation loss, as tests/gpu/test_gpu_model.cpp
# states for the stage alone (bf16 weights and activations round to 2^-8 relative, compounded over 4
# layers; the tiny model's per-step loss drop is ~0.1-0.5, so a wrong gradient shows), 1e-1 on the grad
# norm (a norm of bf16-computed gradients; a missing or double-counted tensor moves it by more). Layout:
# relative 1e-2: each micro-batch runs the same bf16 math at both layouts, only the fp32 gradient
# summation order differs (DP partial sums, reduce-scatter), which re-rounding the weights to bf16 can
# turn into single-ulp flips, far below 1e-2; a lost or garbled activation or gradient shard is above it.
# bf16 gradients: each tensor's gradient is rounded to bf16 (2^-8 relative) once per micro-batch and kernel
# instead of staying fp32; that is the size of the bf16-weights error already in cuda vs cpu, so the same
# 2e-2 / 1e-1 apply (against the fp32-gradient cuda run, and across layouts, where the rounding points move:
# at dp = 2 each rank rounds 2 micro-batches' sum instead of 4, and the tied embedding's two stage sums are
# rounded once more after their all-reduce); a gradient lost or double-counted moves them by more.
# Usage (CTest's and tools/gpu-check.sh's interface): bash trainer_cuda.sh SRC BUILD, from a scratch
# directory. Needs BUILD/bin/iris-train, BUILD/data/sample_text.{bin,idx} (tools/prepare-sample.sh),
# SRC/tests/mpi/common.bash, mpirun on PATH (4 ranks on one GPU) and python3 ($IRIS_PYTHON when set;
# standard library only). Exit 77: skipped (no GPU), unless IRIS_EXPECT_GPU=1. IRIS_TRAINER_CUDA_STEPS=1,2,3
# runs only those steps (tools/gpu-check.sh runs 1-3 first, the rest last).
set -uo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
python=${IRIS_PYTHON:-python3}
train="$build/bin/iris-train"
# Not write_tiny_model: its head size (32 / 4 = 8) is refused by the GPU attention kernels (multiples of
# 32 only). Head size 64 (the tensor-core path), GQA 4 over 2 KV heads, splits at tp = 2.
cat >model.json <<'JSON'
{"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": true, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
common=(--model.config model.json --data.path "$build/data/sample_text" --data.split 90,10 --eval.batches 1
        --train.seq_len 16 --train.micro_batch 2 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3
        --train.log_every 1 --optim.grad_clip 1.0 --parallel.bucket_mb 0.01)

launch() {  # ranks out flags...: runs iris-train into OUT (log OUT.log); returns its status
  local n=$1 out=$2
  shift 2
  rm -rf "$out"
  mpi "$n" "$train" "${common[@]}" --output.dir "$out" "$@" >"$out.log" 2>&1
}
# The compared runs: 5 steps, global batch 4 micro-batches of 2 (grad_accum 4/dp), validation at step 5.
run() {  # ranks out dp extra flags...
  local n=$1 out=$2 dp=$3
  shift 3
  launch "$n" "$out" --train.steps 5 --train.grad_accum $((4 / dp)) --eval.every 5 --output.save_weights true "$@"
}

# compare A B LOSS_RTOL NORM_RTOL: per-step loss, val_loss and grad_norm of two runs' metrics.jsonl.
compare() {
  "$python" - "$@" <<'PY'
import json, sys
a_dir, b_dir, loss_rtol, norm_rtol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
a = [json.loads(l) for l in open(f"{a_dir}/metrics.jsonl")]
b = [json.loads(l) for l in open(f"{b_dir}/metrics.jsonl")]
ok = len(a) == len(b)
if not ok: print(f"{a_dir}: {len(a)} steps, {b_dir}: {len(b)} steps")
for x, y in zip(a, b):
    for key, tol in (("loss", loss_rtol), ("val_loss", loss_rtol), ("grad_norm", norm_rtol)):
        if key not in x and key not in y: continue
        u, v = x.get(key), y.get(key)
        bad = u is None or v is None or abs(u - v) > tol * abs(u)
        print(f"  step {x['step']} {key}: {u} vs {v} rel {abs(u - v) / abs(u) if not bad or (u and v) else 'n/a'}"
              f" (tol {tol}){' FAIL' if bad else ''}")
        ok = ok and not bad
sys.exit(0 if ok else 1)
PY
}
learns() {  # run: loss of the last step < first - 0.05
  "$python" - "$1" <<'PY'
import json, sys
l = [json.loads(x)["loss"] for x in open(f"{sys.argv[1]}/metrics.jsonl")]
print(f"  {sys.argv[1]} losses {l}")
sys.exit(0 if l[-1] < l[0] - 0.05 else 1)
PY
}
same_drop() {  # ref run rtol: run's loss drop (step 1 to the last) within rtol of ref's
  "$python" - "$@" <<'PY'
import json, sys
def drop(d):
    l = [json.loads(x)["loss"] for x in open(f"{d}/metrics.jsonl")]
    return l[0] - l[-1]
a, b, tol = drop(sys.argv[1]), drop(sys.argv[2]), float(sys.argv[3])
print(f"  loss drop over the run: {sys.argv[1]} {a:.5f}, {sys.argv[2]} {b:.5f} (rel tol {tol})")
sys.exit(0 if abs(a - b) <= tol * abs(a) else 1)
PY
}
same_weights() {  # two runs' weights/ directories byte-identical
  for f in "$1"/weights/*.safetensors; do cmp -s "$f" "$2/weights/$(basename "$f")" || { echo "  $f differs"; return 1; }; done
}

# 0. Is there a GPU? The trainer itself answers (no extra probe binary in the bundle).
if ! launch 1 probe --train.device cuda --train.steps 1; then
  if grep -q "no CUDA device is visible" probe.log; then
    if [ "${IRIS_EXPECT_GPU:-0}" != 0 ]; then echo "FAIL: no GPU but IRIS_EXPECT_GPU is set"; cat probe.log; exit 1; fi
    echo "SKIP: $(grep -o 'no CUDA device is visible.*' probe.log | head -n1)"; exit 77
  fi
  echo "FAIL: the probe run failed"; tail -n 30 probe.log; exit 1
fi
grep -E "device .*train.device=cuda|MFU unknown" probe.log

# IRIS_TRAINER_CUDA_STEPS: the steps to run (comma-separated, default all); step 1's runs are the reference
# of the others, so it always runs, and 8 brings 5, 10 brings 9 (the runs they compare against).
steps=,${IRIS_TRAINER_CUDA_STEPS:-1,2,3,4,5,6,7,8,9,10,11},
case $steps in *,8,*) steps+=5, ;; esac
case $steps in *,10,*) steps+=9, ;; esac
want() { [[ $steps == *",$1,"* ]]; }
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }

# 1. cuda vs cpu
run 1 cpu 1 --train.device cpu || { echo "FAIL cpu run"; tail -n 20 cpu.log; exit 1; }
run 1 cuda 1 --train.device cuda || { echo "FAIL cuda run"; tail -n 20 cuda.log; exit 1; }
check "cuda vs cpu (loss/val_loss rel 2e-2, grad_norm rel 1e-1)" compare cpu cuda 2e-2 1e-1
check "cpu learns" learns cpu
check "cuda learns" learns cuda
# The per-step tolerance (2e-2 of ~7.6) is wider than the 5 steps' whole drop (~0.2), so the drop itself is
# compared too: within 25% of the cpu run's (bf16 noise on each loss is ~1e-3 relative at this init).
check "cuda's loss drop within 25% of cpu's" same_drop cpu cuda 0.25
check "cuda metrics: device_peak_memory_mib > 0, mfu known (the table or a warning naming the device)" "$python" - cuda cuda.log <<'PY'
import json, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/metrics.jsonl")]
log = open(sys.argv[2]).read()
mem_ok = all((r.get("device_peak_memory_mib") or 0) > 0 for r in rows)
mfu_ok = all(r["mfu"] is not None for r in rows) or "MFU unknown for device" in log
print(f"  device_peak_memory_mib {[r.get('device_peak_memory_mib') for r in rows]} mfu {[r['mfu'] for r in rows]}")
sys.exit(0 if mem_ok and mfu_ok else 1)
PY

# 2. determinism
if want 2; then
  run 1 cuda2 1 --train.device cuda || { echo "FAIL second cuda run"; tail -n 20 cuda2.log; fail=1; }
  check "two cuda runs identical" compare cuda cuda2 0 0
  check "two cuda runs: identical weights" same_weights cuda cuda2
fi

# 3. checkpoint and resume
if want 3; then
  rm -rf ckpt
  if IRIS_FAULT=0:4:exit run 1 first 1 --train.device cuda --checkpoint.dir ckpt --checkpoint.every 3; then
    echo "FAIL the interrupted cuda run did not stop"; fail=1
  elif ! run 1 resumed 1 --train.device cuda --checkpoint.dir ckpt --checkpoint.load latest; then
    echo "FAIL cuda resume"; tail -n 20 resumed.log; fail=1
  else
    grep -q "resumed from .*step_00000003 at step 3" resumed.log || { echo "FAIL no resume line"; fail=1; }
    mkdir -p tail && tail -n 2 cuda/metrics.jsonl >tail/metrics.jsonl
    check "resume on cuda: steps 4-5 bit-identical" compare tail resumed 0 0
    check "resume on cuda: final weights bit-identical" same_weights cuda resumed
  fi
fi

# 4. NCCL, one rank
if want 4; then
  if run 1 nccl 1 --train.device cuda --parallel.comm nccl; then
    check "parallel.comm nccl (tp=pp=dp=1) identical to mpi" compare cuda nccl 0 0
  elif grep -q "parallel.comm=nccl needs" nccl.log; then
    echo "skip parallel.comm nccl: $(grep -o 'parallel.comm=nccl needs[^;]*' nccl.log | head -n1)"
  else
    echo "FAIL parallel.comm nccl run"; tail -n 20 nccl.log; fail=1
  fi
fi

# 5. pp=2 × dp=2 on one GPU (StagedComm), the same global batch (grad_accum 4/dp)
if want 5; then
  if run 4 layout 2 --train.device cuda --parallel.comm mpi --parallel.pp 2; then
    check "pp=2 x dp=2 (mpi, one GPU) vs one rank (rel 1e-2)" compare cuda layout 1e-2 1e-2
  else
    echo "FAIL pp=2 x dp=2 run"; tail -n 30 layout.log; fail=1
  fi
fi

# 6. tp = 2 × dp = 2 (mpi, 4 ranks on one GPU): TP changes where bf16 rounding happens (each rank's
#    row-parallel partial product, all-reduced in fp32), so the cuda-vs-cpu tolerance applies, and the drop.
if want 6; then
  if run 4 tp2 2 --train.device cuda --parallel.comm mpi --parallel.tp 2; then
    check "tp=2 x dp=2 (mpi, one GPU) vs one rank (loss rel 2e-2, grad_norm rel 1e-1)" compare cuda tp2 2e-2 1e-1
    check "tp=2 x dp=2 loss drop within 25% of one rank's" same_drop cuda tp2 0.25
  else
    echo "FAIL tp=2 x dp=2 run"; tail -n 30 tp2.log; fail=1
  fi
fi

# 7. train.recompute full changes what is kept, never the arithmetic: bit-identical to none.
if want 7; then
  if run 1 recompute 1 --train.device cuda --train.recompute full; then
    check "recompute full identical to none on cuda" compare cuda recompute 0 0
  else
    echo "FAIL recompute full run"; tail -n 20 recompute.log; fail=1
  fi
fi

# 8. parallel.overlap_grad_reduce true (forced: auto is off with parallel.comm mpi) vs run 5's reduce-scatter
#    after the backward: at dp = 2 each gradient is a sum of two, whatever the order, so bit-identical; and
#    the CUDA stage must have reported layers during the backward (buckets issued before it ended).
if want 8; then
  if run 4 layout_overlap 2 --train.device cuda --parallel.comm mpi --parallel.pp 2 --parallel.overlap_grad_reduce true; then
    check "pp=2 x dp=2: overlapped gradient reduction identical to the reduce-scatter after the backward" \
      compare layout layout_overlap 0 0
    grep -h "buckets issued during the backward" layout_overlap.log
    n=$(buckets_issued_in_backward layout_overlap.log)
    check "pp=2 x dp=2: buckets issued during the backward (${n:-none})" test "${n:-0}" -gt 0
  else
    echo "FAIL pp=2 x dp=2 overlap_grad_reduce=true run"; tail -n 30 layout_overlap.log; fail=1
  fi
fi

# 9. bf16 gradient accumulation (train.grad_dtype bf16) vs run 1's fp32 gradients on cuda.
if want 9; then
  device_mib() { grep -o "rank 0 holds [0-9.]* MiB" "$1" | head -n1 | grep -o "[0-9.]*"; }
  if run 1 bf16 1 --train.device cuda --train.grad_dtype bf16; then
    check "bf16 gradients vs fp32 gradients on cuda (loss/val_loss rel 2e-2, grad_norm rel 1e-1)" compare cuda bf16 2e-2 1e-1
    check "bf16 gradients learn" learns bf16
    check "bf16 gradients: loss drop within 25% of fp32 gradients'" same_drop cuda bf16 0.25
    check "bf16 gradients: the start-up line names them" grep -q "bf16 (train.grad_dtype=bf16)" bf16.log
    check "bf16 gradients: smaller flat device buffers ($(device_mib bf16.log) MiB vs $(device_mib cuda.log) MiB)" \
      "$python" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" \
      "$(device_mib bf16.log)" "$(device_mib cuda.log)"
  else
    echo "FAIL bf16 gradient run"; tail -n 20 bf16.log; fail=1
  fi
fi

# 10. bf16 gradients at pp = 2 × dp = 2 (the reduce-scatter through fp32, the tied embedding's all-reduce
#     through fp32; overlap_grad_reduce asked for, and reported as not applying).
if want 10; then
  if run 4 bf16_layout 2 --train.device cuda --parallel.comm mpi --parallel.pp 2 --train.grad_dtype bf16 \
       --parallel.overlap_grad_reduce true; then
    check "bf16 gradients, pp=2 x dp=2 (mpi, one GPU) vs one rank (loss rel 2e-2, grad_norm rel 1e-1)" \
      compare bf16 bf16_layout 2e-2 1e-1
    check "bf16 gradients, pp=2 x dp=2: loss drop within 25% of one rank's" same_drop bf16 bf16_layout 0.25
    check "bf16 gradients, pp=2 x dp=2: the start-up log says the overlap does not apply" \
      grep -q "overlap_grad_reduce does not apply to train.grad_dtype=bf16" bf16_layout.log
  else
    echo "FAIL bf16 gradients pp=2 x dp=2 run"; tail -n 30 bf16_layout.log; fail=1
  fi
fi

# 11. The opt-in register-resident attention kernels (IRIS_ATTENTION=mma, src/kernels/cuda/attention_mma.cu)
#     in the whole model: against run 1 within the cuda-vs-cpu tolerance (other kernels, other roundings),
#     and it learns.
if want 11; then
  if IRIS_ATTENTION=mma run 1 cuda_mma 1 --train.device cuda; then
    check "IRIS_ATTENTION=mma vs the default kernels (loss/val_loss rel 2e-2, grad_norm rel 1e-1)" compare cuda cuda_mma 2e-2 1e-1
    check "IRIS_ATTENTION=mma: loss drop within 25% of the default kernels'" same_drop cuda cuda_mma 0.25
  else
    echo "FAIL IRIS_ATTENTION=mma run"; tail -n 20 cuda_mma.log; fail=1
  fi
fi
exit $fail
