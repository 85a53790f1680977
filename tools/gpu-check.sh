#!/usr/bin/env bash
# Runs the bundled GPU tests on a GPU machine that lacks this project's build dependencies.
# Here:  cmake --build build && tools/bundle.sh --only 'test_gpu_*' --no-cuda-libs   (makes .bundle/)
#        tar -cJf .bundle.tar.xz .bundle   (~12 MB instead of ~68 MB: the device tool carries 64 MiB at most)
# There: tools/gpu-check.sh [BUNDLE]   (default .bundle, unpacked first from .bundle.tar.xz when only that came). IRIS_EXPECT_GPU=1 makes a missing device a
# failure instead of a skip. Logs go to $OUT when set (the device tool brings them back), else ./gpu-logs.
# Exit status: non-zero when any test binary fails.
set -uo pipefail
bundle=${1:-.bundle}
if [ ! -d "$bundle" ] && [ -f "$bundle.tar.xz" ]; then tar -xJf "$bundle.tar.xz" || exit 1; fi
[ -d "$bundle/bin" ] || { echo "gpu-check: no bundle in $bundle (see the header of this script)" >&2; exit 2; }
logs=${OUT:-gpu-logs}
mkdir -p "$logs"
export IRIS_EXPECT_GPU=1
# Open MPI's plugins and singleton settings (test_gpu_comm starts MPI as one rank without mpirun).
[ -f "$bundle/env.sh" ] && source "$bundle/env.sh"
# cuBLASLt, cudart and NCCL come from the machine (the bundle leaves them out: cuBLASLt is ~540 MB,
# NCCL ~220 MB). Without libnccl.so.2 there, test_gpu_comm cannot start: rebuild with -DIRIS_NCCL=OFF
# to run its host-staged half.
for lib in libcublasLt.so.13 libcudart.so.13 libnccl.so.2; do
  if ! ldconfig -p | grep -q "$lib"; then
    # The toolkit's folders, or the CUDA wheels next to the machine's PyTorch (nvidia/*/lib).
    dir=$(dirname "$(find /usr/local/cuda*/lib* /usr/lib /opt "$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)/nvidia" \
      -name "$lib*" 2>/dev/null | head -n1)" 2>/dev/null)
    [ -n "$dir" ] && [ "$dir" != . ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
nvidia-smi -L 2>&1 | tee "$logs/gpu.txt"
status=0
for t in "$bundle"/bin/test_gpu_*; do
  name=$(basename "$t")
  echo "== $name"
  if ! timeout 300 "$t" --gtest_color=no > "$logs/$name.log" 2>&1; then status=1; echo "FAILED: $name"; fi
  # Summary and failures here; every shape's max abs/rel error is in the log.
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure|no CUDA device|outside atol" "$logs/$name.log" | head -n 40
done
exit $status
