#!/usr/bin/env bash
# iris-slurm --task eval: CPU jobs that run here as they are (mpirun as launcher): mcq (generic sample) at
# --layout 1,2 on 4 ranks (pp 2 × dp 2) and ppl (--stride through --train-arg) at tp 2 on 2 ranks, on the
# random HF model of eval_models.py (fixture eval_models); their summaries equal direct one-rank runs (acc and
# acc_norm exactly, the ppl loss within 1e-6), and bad options are refused.
#   bash tests/eval/slurm_job.sh <source dir> <build dir>
set -uo pipefail
src=$1 build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
hf=$build/eval_models/gqa
[ -f "$hf/config.json" ] || { echo "FAIL: no $hf (the eval_models test makes it)"; exit 1; }
fail() { echo "FAIL: $*"; exit 1; }
mcq_in=$src/data/sample/eval/generic.jsonl
text_in=$src/data/sample/corpus/$(ls "$src/data/sample/corpus" | head -1)
"$build/bin/iris-slurm" --task eval --eval-task mcq --eval-format generic --model "$hf/config.json" --cpu-ranks 4 \
  --layout 1,2 --init-from "$hf" --tokenizer "$hf/tokenizer.model" --data "$mcq_in" --run-dir runs/mcq \
  --output mcq.sbatch >slurm.log 2>&1 || { cat slurm.log; fail "iris-slurm --task eval (mcq)"; }
bash -n mcq.sbatch || fail "mcq.sbatch is not valid bash"
grep -q -- "--ntasks=4" mcq.sbatch || fail "mcq.sbatch does not ask for 4 tasks"
SLURM_JOB_ID=0 SLURM_JOB_NUM_NODES=1 IRIS_LAUNCHER=mpirun bash mcq.sbatch >mcq.log 2>&1 || { cat mcq.log; fail "the mcq job failed"; }
"$build/bin/iris-eval" mcq --hf "$hf" --format generic --input "$mcq_in" --output direct.mcq >direct.log 2>&1 \
  || { cat direct.log; fail "direct mcq run"; }
"$build/bin/iris-slurm" --task eval --eval-task ppl --model "$hf/config.json" --cpu-ranks 2 --init-from "$hf" \
  --tokenizer "$hf/tokenizer.model" --data "$text_in" --run-dir runs/ppl --train-arg=--seq-len=64 \
  --train-arg=--stride=24 --output ppl.sbatch >slurm.log 2>&1 || { cat slurm.log; fail "iris-slurm --task eval (ppl)"; }
SLURM_JOB_ID=0 SLURM_JOB_NUM_NODES=1 IRIS_LAUNCHER=mpirun bash ppl.sbatch >ppl.log 2>&1 || { cat ppl.log; fail "the ppl job failed"; }
"$build/bin/iris-eval" ppl --hf "$hf" --input "$text_in" --tokenizer "$hf/tokenizer.model" --seq-len 64 --stride 24 \
  --output direct.ppl >direct.log 2>&1 || { cat direct.log; fail "direct ppl run"; }
/usr/bin/python3 - <<'PY' || fail "job results differ from the direct runs"
import json
a, b = json.load(open("runs/mcq/summary.json")), json.load(open("direct.mcq/summary.json"))
assert a["layout"].startswith("tp=1 pp=2 dp=2"), a["layout"]
for k in ("acc", "acc_norm", "acc_stderr", "n"):
    assert a[k] == b[k], (k, a[k], b[k])
p, q = json.load(open("runs/ppl/summary.json")), json.load(open("direct.ppl/summary.json"))
assert p["layout"].startswith("tp=2 pp=1"), p["layout"]
assert p["tokens"] == q["tokens"] and abs(p["loss"] - q["loss"]) < 1e-6, (p, q)
print("ok   iris-slurm --task eval: the mcq job (pp 2 x dp 2) and the ppl job (tp 2) equal one-rank runs")
PY
[ $? = 0 ] || exit 1
"$build/bin/iris-slurm" --task eval --eval-task mcq --model "$hf/config.json" --cpu-ranks 2 --init-from "$hf" \
  --data "$mcq_in" --output bad.sbatch >bad.log 2>&1 && fail "mcq without --eval-format was accepted"
grep -q "needs --eval-format" bad.log || { cat bad.log; fail "no --eval-format message"; }
"$build/bin/iris-slurm" --task eval --eval-task mcq --eval-format generic --model "$hf/config.json" --cpu-ranks 3 \
  --layout 2,1 --init-from "$hf" --data "$mcq_in" --output bad.sbatch >bad.log 2>&1 && fail "3 ranks at tp 2 accepted"
grep -q "not a multiple of tp x pp" bad.log || { cat bad.log; fail "no layout message"; }
echo "ok   bad iris-slurm --task eval options refused"
