#!/usr/bin/env bash
# tools/scaling-study --slurm on the local cluster: it writes the array job through iris-slurm --sweep
# (CPU backend, 2 ranks, layouts tp=1 and tp=2), submits it with sbatch, every array task completes,
# and `collect` turns the tasks' metrics.jsonl into the CSV and plots of the local path.
set -euo pipefail
src=$1 build=$2
. "$src/tests/slurm/common.bash"
use_cluster
rm -rf study
"$src/tools/scaling-study" --slurm --build "$build" --out study --nodes 1 --layouts "1,1 2,1" --cpu-ranks 2 \
  --steps 2 --seq 32 --micro-batch 2 --grad-accum 1 -- --time 00:05:00 --signal-lead 60 | tee submit.log
id=$(sed -nE 's/^scaling-study: submitted job ([0-9]+);.*/\1/p' submit.log)
[ -n "$id" ] || { echo "FAIL: no job id in the scaling-study output"; exit 1; }
# An array job leaves the queue when all its tasks have; then every task must have COMPLETED.
for _ in $(seq 240); do [ -z "$(squeue -h -j "$id" 2>/dev/null)" ] && break; sleep 1; done
[ -z "$(squeue -h -j "$id")" ] || { echo "FAIL: array job $id still queued after 240 s"; scancel "$id"; exit 1; }
states=$(scontrol show job "$id" | grep -o 'JobState=[A-Z_]*' | sort | uniq -c)
echo "array job $id: $states"
cat study/iris-scaling-*.log
[ "$(echo "$states" | grep -c COMPLETED)" -eq 1 ] && [ "$(echo "$states" | wc -l)" -eq 1 ] \
  && [ "$(echo "$states" | awk '{print $1}')" -eq 2 ] || { echo "FAIL: not both array tasks COMPLETED"; exit 1; }
"$src/tools/scaling-study" collect --build "$build" --out study
[ "$(tail -n +2 study/scaling.csv | cut -d, -f1-4 | tr '\n' ' ')" = "2,1,1,2 2,2,1,1 " ] \
  || { echo "FAIL: unexpected rows: $(cat study/scaling.csv)"; exit 1; }
ls study/tokens_per_s.png study/scaling_efficiency.png study/peak_memory.png
echo "scaling sweep through Slurm: OK"
