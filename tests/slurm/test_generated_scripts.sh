#!/usr/bin/env bash
# The example scripts (llama2-7b and llama2-13b pretraining, llama2-7b SFT) are what iris-slurm writes
# today, and they pass `sbatch --test-only` on the local cluster's GPU-shaped partition (nodes with
# 8 GPUs and 64 cores that are declared but never run anything). A script asking for more GPUs per
# node than exist must fail the same check, so the check can fail.
set -euo pipefail
src=$1 build=$2
. "$src/tests/slurm/common.bash"
use_cluster
rm -rf gen && mkdir gen
# The gpu nodes never answer, so Slurm marks them down again: make them schedulable for a check. Right
# after the resume they are "idle*" (not responding) and sbatch --test-only refuses them; wait for "idle".
gpu_nodes_schedulable() {
  scontrol update nodename=gpu[1-4] state=resume >/dev/null 2>&1 || true
  for _ in $(seq 30); do
    [ "$(sinfo -h -p gpu -o %t | sort -u)" = idle ] && return 0
    sleep 1
  done
  echo "warning: the gpu nodes are $(sinfo -h -p gpu -o %t | sort -u | tr '\n' ' ')after 30 s"
}
IRIS_SLURM=$build/bin/iris-slurm bash "$src/jobs/slurm/examples/generate.sh" "$PWD/gen"
for f in llama2-7b-pretrain llama2-13b-pretrain llama2-7b-sft; do
  # line 4 is the command that wrote the script, which names the output path
  diff <(sed 4d "$src/jobs/slurm/examples/$f.sbatch") <(sed 4d "gen/$f.sbatch") ||
    { echo "FAIL: jobs/slurm/examples/$f.sbatch is stale: rerun jobs/slurm/examples/generate.sh"; exit 1; }
  bash -n "gen/$f.sbatch"
  gpu_nodes_schedulable
  out=$(sbatch --test-only "gen/$f.sbatch" 2>&1) || { echo "FAIL: $f: $out"; exit 1; }
  echo "ok $f: $out"
done
"$build/bin/iris-slurm" --model "$src/configs/models/llama2-7b.json" --nodes 1 --gpus-per-node 16 --layout 8,2 \
  --data '$SCRATCH/x' --partition gpu --output too-many-gpus.sbatch
gpu_nodes_schedulable
if out=$(sbatch --test-only too-many-gpus.sbatch 2>&1); then echo "FAIL: 16 GPUs per node accepted: $out"; exit 1; fi
echo "ok: 16 GPUs per node refused by Slurm: $out"
