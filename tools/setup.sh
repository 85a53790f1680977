#!/usr/bin/env bash
# Installs the Debian packages Iris builds and runs with, when missing. Idempotent.
# As root it runs apt-get; otherwise it prints the exact apt-get line and exits non-zero.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libboost-program-options-dev
  libsentencepiece-dev sentencepiece
  zlib1g-dev libzstd-dev
  libpcre2-dev
  libspdlog-dev libfmt-dev
  libgtest-dev
  nlohmann-json3-dev
  libopenblas-openmp-dev
  python3 python3-numpy
  gnuplot-nox
  patchelf xz-utils
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} Debian packages present"
  exit 0
fi

line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root:  $line" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
