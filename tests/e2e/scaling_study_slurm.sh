#!/usr/bin/env bash
# tools/scaling-study --slurm without a cluster: the array job it writes through iris-slurm --sweep
# (--no-submit), the sweep.tsv it derives from that script, and `collect` over fake per-task run
# directories (config.ini + metrics.jsonl as iris-train writes them; one task left without metrics)
# giving the same CSV and plots as the local path. tests/slurm/test_scaling_sweep.sh runs it for real.
set -euo pipefail
src=$1 build=$2
fail() { echo "FAIL: $*"; exit 1; }
rm -rf study
"$src/tools/scaling-study" --slurm --no-submit --build "$build" --out study --nodes 1,2 --layouts "1,1 2,2" \
  --cpu-ranks 4 --steps 3 --seq 32 --micro-batch 2 --grad-accum 2 -- --time 00:20:00
abs=$(realpath study)
script=study/scaling.sbatch
grep -qx '#SBATCH --array=0-3' "$script" || fail "no 4-task array line in $script"
grep -qx 'SWEEP=("1 1 1 0" "1 2 2 0" "2 1 1 0" "2 2 2 0")' "$script" || fail "unexpected SWEEP in $script: $(grep SWEEP= $script)"
grep -q -- '"--train.steps=3" "--train.seq_len=32" "--train.micro_batch=2" "--train.grad_accum=2"' "$script" \
  || fail "the run flags are not in $script: $(grep TRAIN_ARGS= $script)"
grep -qx "RUN_DIR=\${RUN_DIR:-\"$abs/runs\"}    # metrics.jsonl, checkpoints/" "$script" || fail "RUN_DIR is not $abs/runs"
grep -qx '#SBATCH --time=00:20:00' "$script" || fail "the extra iris-slurm flag (--time) did not reach $script"
bash -n "$script" || fail "$script is not valid bash"
expected="4 1 1 4 $abs/runs/n1-tp1-pp1
4 2 2 1 $abs/runs/n1-tp2-pp2
8 1 1 8 $abs/runs/n2-tp1-pp1
8 2 2 2 $abs/runs/n2-tp2-pp2"
[ "$(grep -v '^#' study/sweep.tsv)" = "$expected" ] || fail "unexpected sweep.tsv: $(cat study/sweep.tsv)"

# Fake results for three of the four tasks, in the directories the job script names (RUN_DIR/nN-tpT-ppP).
fake_run() {  # dir, tp, pp, tokens/s of steps 2 and 3, peak MiB
  mkdir -p "$1"
  printf '# Resolved iris-train configuration\n[model]\nconfig = %s\n\n[train]\nsteps = 3\nseq_len = 32\nmicro_batch = 2\ngrad_accum = 2\n\n[parallel]\ntp = %s\npp = %s\n' \
    "$src/configs/models/tiny.json" "$2" "$3" > "$1/config.ini"
  for s in 1 2 3; do
    tps=$([ $s = 1 ] && echo 1 || echo "$4")  # the first step is warm-up and must not count
    echo "{\"step\": $s, \"loss\": 7.0, \"tokens_per_s\": $tps, \"peak_memory_mib\": $((s * $5)), \"rank0_peak_memory_mib\": $((s * $5 - 1)), \"mfu\": null}"
  done > "$1/metrics.jsonl"
}
fake_run study/runs/n1-tp1-pp1 1 1 400 10
fake_run study/runs/n1-tp2-pp2 2 2 200 20
fake_run study/runs/n2-tp1-pp1 1 1 600 30
"$src/tools/scaling-study" collect --build "$build" --out study 2> collect.err
grep -q "n2-tp2-pp2: no config.ini; left out" collect.err || fail "the missing task was not reported: $(cat collect.err)"
/usr/bin/python3 - study/scaling.csv <<'PY' || exit 1
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
got = [(r["ranks"], r["tp"], r["pp"], r["dp"], r["seq"], r["micro_batch"], r["grad_accum"], r["steps"]) for r in rows]
assert got == [("4", "1", "1", "4", "32", "2", "2", "3"), ("4", "2", "2", "1", "32", "2", "2", "3"),
               ("8", "1", "1", "8", "32", "2", "2", "3")], got
# tokens/s: mean of steps 2..3; peak: the largest step; efficiency against the 4-rank tp1 pp1 run.
expect = [(400, 30, 29, 1.0, 400), (200, 60, 59, 0.5, 400), (600, 90, 89, 0.75, 800)]
for r, (tps, peak, rank0, eff, ideal) in zip(rows, expect):
    assert float(r["tokens_per_s"]) == tps and float(r["peak_memory_mib"]) == peak, r
    assert float(r["rank0_peak_memory_mib"]) == rank0, r
    assert abs(float(r["scaling_efficiency"]) - eff) < 1e-4 and float(r["ideal_tokens_per_s"]) == ideal, r
    assert float(r["predicted_memory_mib"]) > 0, r  # iris-plan --backend cpu for the run's own shape
PY
for p in tokens_per_s scaling_efficiency peak_memory; do
  [ "$(head -c 8 study/$p.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "study/$p.png is not a PNG"
done
echo "scaling_study_slurm: OK"
