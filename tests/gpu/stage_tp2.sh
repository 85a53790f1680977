#!/usr/bin/env bash
# gpu-check-timeout: 180
# The CUDA stage at tp = 2: two ranks share one GPU through StagedComm (parallel.comm mpi), compared
# with the CPU stage at tp = 2, and recompute modes bit-identical to none (tests/gpu/mpi_gpu_model_tp.cpp;
# CTest runs the same binary as gpu_model_tp2). Called as bash tests/gpu/stage_tp2.sh SRC BUILD.
set -uo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
[ -x "$build/bin/mpi_gpu_model_tp" ] || { echo "skip: no $build/bin/mpi_gpu_model_tp (bundle.sh --only mpi_gpu_model_tp)"; exit 77; }
mpi 2 "$build/bin/mpi_gpu_model_tp" --gtest_color=no
