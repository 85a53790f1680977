#!/usr/bin/env bash
# Runs iris-bench (Iris vs PyTorch, docs/benchmarks.md "iris-bench") from the bundle on a GPU machine
# that lacks this project's build dependencies (as tools/gpu-check.sh does for the GPU tests).
# Here:  cmake --build build && tools/bundle.sh --only 'iris-*' --no-cuda-libs && tar -cJf .bundle.tar.xz .bundle
# There: tools/gpu-bench.sh [iris-bench options...]   (default: both models at sequence 4096)
# The bundle's iris-bench carries the PyTorch script and the model configs; the machine's python3 must
# have torch and transformers. Results and logs go to $OUT/bench when OUT is set, else ./gpu-bench.
set -uo pipefail
bundle=${IRIS_BUNDLE:-.bundle}
if [ ! -d "$bundle" ] && [ -f "$bundle.tar.xz" ]; then tar -xJf "$bundle.tar.xz" || exit 1; fi
[ -x "$bundle/bin/iris-bench" ] && [ -x "$bundle/bin/iris-train" ] ||
  { echo "gpu-bench: no iris-bench and iris-train in $bundle/bin (see the header of this script)" >&2; exit 2; }
out=${OUT:+$OUT/bench}
out=${out:-gpu-bench}
# Open MPI's plugins and singleton settings: iris-train runs as one rank without mpirun.
[ -f "$bundle/env.sh" ] && source "$bundle/env.sh"
# cuBLASLt and cudart from the machine (the toolkit's folders or the CUDA wheels beside its PyTorch).
for lib in libcublasLt.so.13 libcudart.so.13 libnccl.so.2; do
  if ! ldconfig -p | grep -q "$lib"; then
    dir=$(dirname "$(find /usr/local/cuda*/lib* /usr/lib /opt "$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)/nvidia" \
      -name "$lib*" 2>/dev/null | head -n1)" 2>/dev/null)
    [ -n "$dir" ] && [ "$dir" != . ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
mkdir -p "$out"
nvidia-smi -L 2>&1 | tee "$out/gpu.txt"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1 |
  tee -a "$out/gpu.txt"
"$bundle/bin/iris-bench" --device cuda --python python3 --out "$out" "$@" 2>&1 | tee "$out/iris-bench.txt"
exit "${PIPESTATUS[0]}"
