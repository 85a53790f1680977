#!/usr/bin/env bash
# tools/bundle.sh makes a relocatable copy of the programs: after the bundle is moved, every library a
# program loads (glibc and libstdc++ aside, and the CUDA libraries, left to the machine by
# --no-cuda-libs) resolves inside it with LD_LIBRARY_PATH empty, iris-train
# --help runs, and a 2-step single-rank run (MPI singleton, Open MPI plugins from the bundle) gives
# the same losses as the build tree's iris-train. Negative control: with Open MPI pointed at an empty
# plugin folder the run fails, so the bundled plugins are the ones in use.
set -euo pipefail
src=$1 build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$PWD
rm -rf bundle moved direct bundled empty_plugins
"$src/tools/bundle.sh" --build "$build" --out "$work/bundle" --only 'iris-*' --no-cuda-libs
mv bundle moved  # $ORIGIN-relative paths must survive a move

for p in moved/bin/*; do
  outside=$(LD_LIBRARY_PATH= ldd "$p" | awk '$2 == "=>" {print $1, $3}' |
            grep -v -E "^(libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s)\.so" |
            grep -v -E "^(libcudart|libcublas|libcublasLt|libnccl|libcuda)\.so" |  # --no-cuda-libs: the machine's own
            grep -v -E " $work/moved/(bin/\.\./)?lib/" || true)
  [ -z "$outside" ] || { echo "FAIL: $p loads libraries from outside the bundle:"; echo "$outside"; exit 1; }
done
echo "every bundled program resolves its libraries inside the bundle"

(source moved/env.sh && LD_LIBRARY_PATH= moved/bin/iris-train --help) > help.txt
grep -q -- "--config" help.txt || { echo "FAIL: bundled iris-train --help printed no options"; cat help.txt; exit 1; }

run() {  # run NAME PROGRAM: a 2-step single-rank run from the checkout (the config names its model relative to it)
  (cd "$src" && LD_LIBRARY_PATH= "$2" --config configs/train/tiny-cpu.ini --data.path "$build/data/sample_text" \
     --data.tokenizer "$build/data/tokenizer.model" --output.dir "$work/$1" --train.steps 2 --train.seq_len 32) \
     > "$work/$1.log" 2>&1
}
run direct "$build/bin/iris-train" || { tail -20 direct.log; exit 1; }
(source moved/env.sh && run bundled "$work/moved/bin/iris-train") || { tail -20 bundled.log; exit 1; }
/usr/bin/python3 - direct/metrics.jsonl bundled/metrics.jsonl <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 2, (len(a), len(b))
for x, y in zip(a, b):
    assert x["loss"] == y["loss"], f"step {x['step']}: loss {x['loss']} (build) vs {y['loss']} (bundle)"
print("the bundled iris-train repeats the build's 2 steps bit for bit")
PY

mkdir -p no_plugins
if (source moved/env.sh && export OMPI_MCA_mca_base_component_path="$work/no_plugins" &&
    timeout 120 bash -c "$(declare -f run); work='$work' src='$src' build='$build' run empty_plugins '$work/moved/bin/iris-train'"); then
  echo "FAIL: the run succeeded without Open MPI plugins: the bundle's env.sh is not what Open MPI reads"; exit 1
fi
echo "without plugins the bundled run fails, so it used the bundle's Open MPI plugins"
