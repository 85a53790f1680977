#!/usr/bin/env bash
# tools/scaling-study over CPU layouts on this machine: the CSV has one row per run with the expected
# columns, and the PNG plots exist with labelled axes and series.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
fail() { echo "FAIL: $*"; exit 1; }
rm -rf study
"$src/tools/scaling-study" --build "$build" --out study --runs "1:1,1 2:1,1 2:2,1 2:1,2" --steps 2 --seq 32 \
  --micro-batch 2 --grad-accum 2
csv=study/scaling.csv
[ "$(head -1 $csv)" = "ranks,tp,pp,dp,micro_batch,grad_accum,seq,steps,tokens_per_s,peak_memory_mib,mfu,predicted_memory_mib,scaling_efficiency,ideal_tokens_per_s,rank0_peak_memory_mib" ] \
  || fail "unexpected header: $(head -1 $csv)"
[ "$(tail -n +2 $csv | cut -d, -f1-4 | tr '\n' ' ')" = "1,1,1,1 2,1,1,2 2,2,1,1 2,1,2,1 " ] || fail "unexpected rows: $(cat $csv)"
python3 - "$csv" <<'PY' || exit 1
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    for k in ("tokens_per_s", "peak_memory_mib", "predicted_memory_mib", "scaling_efficiency", "rank0_peak_memory_mib"):
        assert float(r[k]) > 0, (k, r)
    assert float(r["peak_memory_mib"]) >= float(r["rank0_peak_memory_mib"]), r  # the maximum over ranks
assert abs(float(rows[0]["scaling_efficiency"]) - 1.0) < 1e-9, rows[0]
PY
for p in tokens_per_s scaling_efficiency peak_memory; do
  [ "$(head -c 8 study/$p.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "study/$p.png is not a PNG"
  grep -q "set xlabel 'MPI ranks" study/$p.gp && grep -q "set ylabel '" study/$p.gp && grep -q "title 'measured" study/$p.gp \
    || fail "study/$p.gp lacks axis labels or series titles"
done
grep -q "title 'predicted rank 0 (iris-plan --backend cpu)'" study/peak_memory.gp || fail "no prediction series in the memory plot"
grep -q "title 'ideal" study/tokens_per_s.gp || fail "no ideal-scaling series in the throughput plot"
echo "plan_scaling_study: OK"
