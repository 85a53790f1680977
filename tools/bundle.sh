#!/usr/bin/env bash
# Makes a relocatable copy of the built programs: OUT/bin (build/bin/*) and OUT/lib (every shared
# library they load, from ldd), with RUNPATH $ORIGIN/../lib on the programs and $ORIGIN on the
# libraries, so they run on a machine without MPI, HDF5, Boost, spdlog, fmt, sentencepiece, OpenBLAS.
# glibc and the C++ runtime (libc, libm, libstdc++, libgcc_s, the loader) come from the target machine:
# a copied libc must match that machine's loader, and every Linux with a C++ compiler has libstdc++.
#
#   tools/bundle.sh [--build DIR] [--out DIR] [--only GLOB] [--no-cuda-libs]
#     --only GLOB     bundle only build/bin/GLOB (e.g. 'test_gpu_*')
#     --no-cuda-libs  leave out the CUDA toolkit's libraries (cuBLASLt alone is ~540 MB); the target
#                     then needs them on its library path (e.g. LD_LIBRARY_PATH=/usr/local/cuda/lib64)
#
# Open MPI: its plugins (MCA components) are dlopen()ed from its install tree, so when libmpi is
# bundled they are copied too (OUT/lib/openmpi, OUT/lib/pmix) and OUT/env.sh points Open MPI at them.
# `source OUT/env.sh` before running. It also sets ess_singleton_isolated, so a single rank started
# without mpirun needs no orted. Not supported: mpirun from the bundle (multi-rank launch needs Open
# MPI's launcher and daemons installed on the target).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build out=$root/.bundle only='*' cuda_libs=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --no-cuda-libs) cuda_libs=0; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bundle: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v patchelf >/dev/null || { echo "bundle: patchelf is missing: apt-get install patchelf (tools/setup.sh)" >&2; exit 1; }
[ -d "$build/bin" ] || { echo "bundle: no $build/bin: build first (cmake --build $build)" >&2; exit 1; }

from_target() {  # libraries the target system provides itself
  case $1 in
    linux-vdso.so*|ld-linux*|libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*|\
    libresolv.so.*|libstdc++.so.*|libgcc_s.so.*) return 0 ;;
  esac
  return 1
}
is_cuda_lib() {
  case $1 in libcudart*|libcublas*|libnccl*|libcudnn*|libcuda.so*|libnvrtc*|libnvJitLink*) return 0 ;; esac
  return 1
}

# Copies the dependencies of ELF file $1 into $out/lib (ldd lists the whole transitive closure).
copy_deps() {
  local line name path
  while read -r line; do
    name=${line%% *}
    case $line in
      *"=> not found"*) echo "bundle: $1 needs $name, which is not found here" >&2; exit 1 ;;
      *"=> "*) path=${line#*=> }; path=${path%% (*} ;;
      *) continue ;;
    esac
    from_target "$name" && continue
    if is_cuda_lib "$name"; then
      [ "$cuda_libs" = 1 ] || continue
      [ "$name" = libcuda.so.1 ] && continue  # the driver belongs to the target machine
    fi
    [ -e "$out/lib/$name" ] || cp -L "$path" "$out/lib/$name"
  done < <(ldd "$1" 2>/dev/null | sed 's/^[[:space:]]*//')
}

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
shopt -s nullglob
programs=("$build"/bin/$only)
[ ${#programs[@]} -gt 0 ] || { echo "bundle: nothing matches $build/bin/$only" >&2; exit 1; }
for p in "${programs[@]}"; do
  [ -f "$p" ] && [ -x "$p" ] || continue
  cp "$p" "$out/bin/"
  copy_deps "$p"
done

mpi_note=""
mpi_libs=("$out"/lib/libmpi.so.*)  # nullglob: empty when no program links MPI
if [ ${#mpi_libs[@]} -gt 0 ] && command -v ompi_info >/dev/null; then
  pkglibdir=$(ompi_info --path pkglibdir --parsable | sed -n 's/^path:pkglibdir://p')
  mkdir -p "$out/lib/openmpi"
  cp -L "$pkglibdir"/*.so "$out/lib/openmpi/"
  for c in "$out"/lib/openmpi/*.so; do copy_deps "$c"; done
  pmix_dir=$(dirname "$(readlink -f "$(ldconfig -p | sed -n 's/.*libpmix.so.2 .*=> //p' | head -n1)")")/pmix
  if [ -d "$pmix_dir" ]; then
    mkdir -p "$out/lib/pmix"
    cp -L "$pmix_dir"/*.so "$out/lib/pmix/"
    for c in "$out"/lib/pmix/*.so; do copy_deps "$c"; done
  fi
  [ -d /usr/share/openmpi ] && mkdir -p "$out/share" && cp -r /usr/share/openmpi "$out/share/"
  mpi_note=1
fi

for p in "$out"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$p"; done
for l in "$out"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$l"; done
for l in "$out"/lib/openmpi/*.so "$out"/lib/pmix/*.so; do patchelf --set-rpath '$ORIGIN/..' "$l"; done

cat > "$out/env.sh" <<'ENV'
# source this file before running a bundled program (bash): points Open MPI at the bundled plugins.
bundle_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export OPAL_PREFIX=$bundle_dir
export OPAL_PKGDATADIR=$bundle_dir/share/openmpi
export OMPI_MCA_mca_base_component_path=$bundle_dir/lib/openmpi
export PMIX_MCA_mca_base_component_path=$bundle_dir/lib/pmix
export OMPI_MCA_ess_singleton_isolated=1  # one rank without mpirun: no orted to start
export OMPI_MCA_btl=self,vader,tcp        # skip the InfiniBand/UCX probes a bare machine cannot answer
unset bundle_dir
ENV
echo "bundle: $(ls "$out/bin" | wc -l) programs, $(ls "$out/lib" | grep -c '\.so') libraries$([ -n "$mpi_note" ] && echo ', Open MPI plugins') in $out ($(du -sh "$out" | cut -f1))"
