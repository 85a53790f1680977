#!/usr/bin/env bash
# iris-plan from the command line: exact parameter counts of the bundled configs, refusal of impossible
# layouts with a reason (exit 2), and layouts that exceed GPU memory marked as such.
set -euo pipefail
src=$1 build=$2
plan=$build/bin/iris-plan
fail() { echo "FAIL: $*"; exit 1; }

declare -A expected=([llama2-7b]=6,738,415,616 [llama2-13b]=13,015,864,320 [llama3-8b]=8,030,261,248
                     [llama3.2-1b]=1,235,814,400 [llama3.2-3b]=3,212,749,824)
for m in "${!expected[@]}"; do
  "$plan" --model "$src/configs/models/$m.json" --gpus 8 --gpu a100-80gb --global-batch 64 --seq 2048 > "$m.txt"
  grep -q ": ${expected[$m]} parameters" "$m.txt" || fail "$m: expected ${expected[$m]} parameters, got: $(head -1 "$m.txt")"
done

# The issue's example: ranks layouts; tp=1 pp=1 (13B weights + fp32 grads + 1/16 of the optimizer +
# 25 GiB of activations) does not fit in 80 GiB, tp=2 pp=4 does.
"$plan" --model "$src/configs/models/llama2-13b.json" --gpus 16 --gpu a100-80gb --gpus-per-node 8 --seq 4096 \
  --global-batch 1024 > rank.txt
grep -Eq '^ +[0-9]+ +1 +1 +16 .*DOES NOT FIT: needs' rank.txt || fail "tp=1 pp=1 not marked as not fitting"
grep -Eq '^ +[0-9]+ +2 +4 +2 .* fits$' rank.txt || fail "tp=2 pp=4 not listed as fitting"
grep -q 'tp=16 pp=1: parallel.tp = 16 must divide num_attention_heads = 40' rank.txt || fail "tp=16 not listed as impossible"
grep -q '^best layout: --layout' rank.txt || fail "no best layout"

# One layout: the per-GPU breakdown.
"$plan" --model "$src/configs/models/llama2-13b.json" --gpus 16 --gpu a100-80gb --seq 4096 --global-batch 1024 \
  --layout 2,4 > one.txt
for term in weights gradients 'optimizer (ZeRO-1)' activations logits/loss workspace total 'step time' MFU; do
  grep -q "$term" one.txt || fail "breakdown lacks '$term'"
done
grep -q 'fp32 main grads, 4 B/param' one.txt || fail "the default gradient row is not fp32"

# --grad-dtype bf16 (train.grad_dtype): bf16 gradients plus the fp32 DP-summed shard, 2 + 4/dp B/param
# instead of 4: a smaller total at dp = 4 (tp 2 × pp 2 on 16 GPUs; at dp = 2 the two are equal).
"$plan" --model "$src/configs/models/llama2-13b.json" --gpus 16 --gpu a100-80gb --seq 4096 --global-batch 1024 \
  --layout 2,2 > fp32_dp4.txt
"$plan" --model "$src/configs/models/llama2-13b.json" --gpus 16 --gpu a100-80gb --seq 4096 --global-batch 1024 \
  --layout 2,2 --grad-dtype bf16 > bf16.txt
grep -q 'bf16 grads, 2 B/param + fp32 DP-summed shard' bf16.txt || fail "--grad-dtype bf16: no bf16 gradient row"
grep -q ', bf16 gradients$' bf16.txt || fail "--grad-dtype bf16: the job line does not say so"
total_of() { sed -nE 's/^  total +([0-9.]+) GiB.*/\1/p' "$1"; }
awk -v a="$(total_of bf16.txt)" -v b="$(total_of fp32_dp4.txt)" 'BEGIN { exit !(a < b) }' ||
  fail "--grad-dtype bf16 total $(total_of bf16.txt) GiB is not below fp32's $(total_of fp32_dp4.txt) GiB"

# Impossible layouts are refused with the reason and exit status 2.
refuse() {  # expected message, args...
  local want=$1; shift
  set +e; "$plan" "$@" > out.txt 2> err.txt; local rc=$?; set -e
  [ $rc -eq 2 ] || fail "expected exit 2 for $*, got $rc"
  grep -qF -- "$want" err.txt || fail "expected '$want' in: $(cat err.txt)"
}
refuse 'must divide num_attention_heads = 40' --model "$src/configs/models/llama2-13b.json" --gpus 24 --gpu a100-80gb --global-batch 24 --layout 3,1
refuse 'exceeds num_hidden_layers = 32' --model "$src/configs/models/llama2-7b.json" --gpus 64 --gpu h100-80gb --global-batch 64 --layout 1,64
refuse 'does not divide the 16 GPUs' --model "$src/configs/models/llama2-7b.json" --gpus 16 --gpu h100-80gb --global-batch 64 --layout 3,2
refuse 'unknown GPU "z100"' --model "$src/configs/models/llama2-7b.json" --gpus 8 --gpu z100 --global-batch 64
refuse '--grad-dtype must be fp32 or bf16, got "fp16"' --model "$src/configs/models/llama2-7b.json" --gpus 8 --gpu a100-80gb --global-batch 64 --grad-dtype fp16
refuse '--recompute must be none, selective or full' --model "$src/configs/models/llama2-7b.json" --gpus 8 --gpu a100-80gb --global-batch 64 --recompute some
# iris-slurm --layout auto takes the planner's best layout, for several models and cluster shapes.
: > data.bin; : > data.idx
for job in "llama2-13b 2 a100-80gb 256" "llama2-7b 1 h100-80gb 128" "llama3-8b 4 a100-80gb 512" "llama2-13b 8 h100-80gb 1024"; do
  read -r model nodes gpu batch <<<"$job"
  best=$("$plan" --model "$src/configs/models/$model.json" --gpus $((nodes * 8)) --gpus-per-node 8 --gpu "$gpu" \
         --seq 4096 --global-batch "$batch" | sed -nE 's/^best layout: --layout ([0-9]+),([0-9]+)$/tp=\1 pp=\2/p')
  [ -n "$best" ] || fail "iris-plan named no best layout for $job"
  got=$("$build/bin/iris-slurm" --task pretrain --model "$src/configs/models/$model.json" --nodes "$nodes" \
        --gpus-per-node 8 --gpu "$gpu" --seq 4096 --global-batch "$batch" --layout auto --data data --output auto.sbatch |
        grep -oE 'tp=[0-9]+ pp=[0-9]+')
  [ "$got" = "$best" ] || fail "iris-slurm --layout auto chose '$got' for $job, iris-plan's best is '$best'"
done
echo "plan_cli: OK"
