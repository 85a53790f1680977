#!/usr/bin/env bash
# The bundle's own mpirun (tools/bundle.sh carries Open MPI's launcher) launches ranks on a machine
# without Open MPI: in a private mount namespace the system's Open MPI (libraries, plugins, help texts,
# parameter files, mpirun/orted, ompi_info) and ssh are hidden under empty files and folders, and,
# where `ip` exists, a network namespace leaves only the loopback device, as on the GPU machine. There
# a script laid out like tests/mpi/*.sh runs from the moved bundle as `bash SCRIPT BUNDLE BUNDLE`
# (bundle.sh --with / --with-build carried it, its helpers and the sample tokens): 2 ranks of
# mpi_comm_check check every collective, and iris-train at tp = 2 under the bundled mpirun matches a
# single-rank run of the build tree (loss, grad norm 1e-5, weights 1e-4). Negative controls: with
# Open MPI hidden no mpirun on PATH runs, and the bundled mpirun without env.sh fails.
# Needs root and unshare(1); exits 77 (CTest: skipped) without them.
set -euo pipefail
src=$1 build=$2
work=$PWD
if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
  echo "SKIP: hiding the system's Open MPI needs root and a private mount namespace (unshare -m)"; exit 77
fi
rm -rf bundle moved ref tp2 ref.log tp2.log empty hidden_file
"$src/tools/bundle.sh" --build "$build" --out "$work/bundle" --only iris-train --only mpi_comm_check --no-cuda-libs \
  --with tests/mpi/common.bash --with tests/mpi/compare_runs.py --with configs/models \
  --with-build 'data/sample_text.*'
mv bundle moved
for f in bin/mpirun bin/orted lib/openmpi etc/openmpi-mca-params.conf share/openmpi/help-mpi-runtime.txt \
         tests/mpi/common.bash configs/models/tiny.json data/sample_text.bin data/sample_text.idx; do
  [ -e "moved/$f" ] || { echo "FAIL: the bundle has no $f"; exit 1; }
done

# The reference: one rank of the build tree, the settings of the layout-equivalence tests.
source "$src/tests/mpi/common.bash"
write_tiny_model "$work/tiny.json" false
equivalence_args "$work/tiny.json"
"$build/bin/iris-train" "${common[@]}" --train.grad_accum 4 --output.dir ref > ref.log 2>&1 || { tail -20 ref.log; exit 1; }

# What the namespace hides: the system's Open MPI and PMIx install trees and files, found before hiding.
hide_dirs=() hide_files=()
for k in libdir pkgdatadir sysconfdir; do
  hide_dirs+=("$(ompi_info --path "$k" --parsable | sed -n "s/^path:$k://p")")
done
pmix_lib=$(readlink -f "$(ldconfig -p | sed -n 's/.*libpmix.so.2 .*=> //p' | head -n1)")
hide_dirs+=("$(dirname "$(dirname "$pmix_lib")")")
for l in libmpi.so.40 libopen-rte.so.40 libopen-pal.so.40; do
  hide_files+=("$(readlink -f "$(ldconfig -p | sed -n "s/.*$l .*=> //p" | head -n1)")")
done
for p in mpirun mpiexec orterun orted ompi_info ssh rsh; do
  command -v "$p" >/dev/null && hide_files+=("$(readlink -f "$(command -v "$p")")")
done
mkdir -p empty && : > hidden_file

# A script of the bundle's kind (tests/gpu/*.sh): arguments <source> <build>, both the bundle.
cat > script.sh <<'SCRIPT'
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
[ "$(command -v mpirun)" = "$build/bin/mpirun" ] || { echo "FAIL: mpirun is $(command -v mpirun), not the bundle's"; exit 1; }
mpi 2 "$build/bin/mpi_comm_check" 2 1
write_tiny_model tiny.json false
equivalence_args tiny.json
run_and_compare ref tp2 2 1 1
SCRIPT

cat > inner.sh <<'INNER'
# Runs inside the namespace: hides Open MPI, checks it is gone, then runs script.sh from the bundle.
set -euo pipefail
work=$1; shift
while [ "$1" != -- ]; do mount --bind "$work/empty" "$1"; shift; done; shift
for f in "$@"; do mount --bind "$work/hidden_file" "$f"; done
[ "$(command -v ip)" ] && ip link set lo up 2>/dev/null || true
if mpirun --version >/dev/null 2>&1; then echo "FAIL: the system's mpirun still runs: $(command -v mpirun)"; exit 1; fi
if OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 "$work/moved/bin/mpirun" -np 2 \
     "$work/moved/bin/mpi_comm_check" 2 1 > "$work/no_env.log" 2>&1 < /dev/null; then
  echo "FAIL: the bundled mpirun ran without env.sh: it did not need the bundle's settings"; exit 1
fi
echo "without env.sh the bundled mpirun fails ($(grep -m1 . "$work/no_env.log"))"
source "$work/moved/env.sh"
cd "$work" && bash script.sh "$work/moved" "$work/moved" < /dev/null
INNER

ns=(unshare -m --propagation private)
if command -v ip >/dev/null && unshare -m -n true 2>/dev/null; then ns+=(-n); echo "network namespace: loopback only"; fi
"${ns[@]}" bash inner.sh "$work" "${hide_dirs[@]}" -- "${hide_files[@]}"
[ -s tp2/metrics.jsonl ] || { echo "FAIL: the tp = 2 run left no metrics"; exit 1; }
echo "the bundled mpirun ran 2 ranks with the system's Open MPI hidden; tp = 2 matches the single-rank run"
