#!/usr/bin/env bash
# Everything: installs what is missing (Debian packages and the Python reference used by the
# Hugging Face parity tests), builds, and runs the whole suite through CTest. Non-zero on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${IRIS_BUILD_DIR:-build}

tools/setup.sh
# The reference environment must install: if it cannot, the HF tests fail (they never skip).
pyref_python=$(tools/setup-pyref.sh | tail -n 1) || pyref_python=""

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIRIS_PYTHON="$pyref_python"
cmake --build "$build"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
ctest --test-dir "$build" --output-on-failure "$@"
