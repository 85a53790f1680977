#!/usr/bin/env bash
# Makes a relocatable copy of the built programs: OUT/bin (build/bin/*) and OUT/lib (every shared
# library they load, from ldd), with RUNPATH $ORIGIN/../lib on the programs and $ORIGIN on the
# libraries, so they run on a machine without MPI, HDF5, Boost, spdlog, fmt, sentencepiece, OpenBLAS.
# glibc and the C++ runtime (libc, libm, libstdc++, libgcc_s, the loader) come from the target machine:
# a copied libc must match that machine's loader, and every Linux with a C++ compiler has libstdc++.
#
#   tools/bundle.sh [--build DIR] [--out DIR] [--only GLOB]... [--no-cuda-libs] [--with PATH]... [--with-build PATH]...
#                    [--gpu-check] [--pack FILE]
#     --only GLOB        bundle only build/bin/GLOB (e.g. 'test_gpu_*'); repeat for more: --only iris-train --only 'test_gpu_*'
#     --no-cuda-libs     leave out the CUDA toolkit's libraries (cuBLASLt alone is ~540 MB); the target
#                        then needs them on its library path (e.g. LD_LIBRARY_PATH=/usr/local/cuda/lib64)
#     --with PATH        also copy PATH (a file, a folder or a quoted glob relative to the checkout, which must
#                        match something) to OUT/PATH: test scripts, their helpers, configs
#                        (--with 'tests/gpu/*.sh' --with configs/models)
#     --with-build PATH  the same relative to the build dir, also to OUT/PATH (--with-build 'data/sample_text.*')
#     --gpu-check        what tools/gpu-check.sh runs (docs/gpu-validation.md): the GPU tests, iris-train,
#                        iris-bench, iris-attention-bench, mpi_gpu_model_tp, tests/gpu/*.sh and their helper, the
#                        SDPA script and the sample tokens; implies --no-cuda-libs
#     --pack FILE        then tar -cJf FILE (the bundle's folder name inside) and check it is under the device
#                        tool's 64 MiB carry limit
#   OUT then stands for both the checkout and the build dir: a script that CTest would run as
#   `bash SCRIPT <source> <build>` runs from the bundle as `bash OUT/tests/gpu/X.sh OUT OUT`.
#
# Open MPI: its plugins (MCA components) are dlopen()ed from its install tree, so when libmpi is
# bundled they are copied too (OUT/lib/openmpi, OUT/lib/pmix), with Open MPI's launcher: OUT/bin/mpirun
# (orterun, also as mpiexec), orted, the help texts (OUT/share/openmpi, OUT/share/pmix) and the
# parameter files (OUT/etc). `source OUT/env.sh` before running: it points Open MPI and PMIx at OUT
# (OPAL_PREFIX and the OPAL_*/PMIX_* install dirs, see Open MPI's FAQ "relocating an installation"),
# puts OUT/bin first on PATH, so `mpirun -np 4 OUT/bin/iris-train ...` launches on this machine, and
# sets ess_singleton_isolated, so a single rank started without mpirun needs no orted. One machine
# only: no ssh launch to other nodes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build out=$root/.bundle cuda_libs=1 pack=""
only=() with=() with_build=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only+=("$2"); shift 2 ;;
    --no-cuda-libs) cuda_libs=0; shift ;;
    --with) with+=("$2"); shift 2 ;;
    --with-build) with_build+=("$2"); shift 2 ;;
    --gpu-check)
      only+=(iris-train iris-bench iris-attention-bench 'test_gpu_*' mpi_gpu_model_tp)
      with+=('tests/gpu/*.sh' tests/mpi/common.bash bench/torch_sdpa.py)
      with_build+=('data/sample_text.*')
      cuda_libs=0; shift ;;
    --pack) pack=$2; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bundle: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#only[@]} -gt 0 ] || only=('*')
command -v patchelf >/dev/null || { echo "bundle: patchelf is missing: apt-get install patchelf (tools/setup.sh)" >&2; exit 1; }
[ -d "$build/bin" ] || { echo "bundle: no $build/bin: build first (cmake --build $build)" >&2; exit 1; }
build=$(cd "$build" && pwd)

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

# Copies what PATTERN (a path or glob relative to FROM) matches to $out under the same relative path.
copy_extra() {  # from, pattern, option name
  local from=$1 pattern=$2 matches=() m
  mapfile -t matches < <(cd "$from" && compgen -G "$pattern" || true)
  # Nothing matched is an error, not a note: a bundle without its data would fail only on the GPU machine.
  [ ${#matches[@]} -gt 0 ] || { echo "bundle: $3 '$pattern' matches nothing in $from" >&2; exit 1; }
  for m in "${matches[@]}"; do
    case $m in /*|..|../*|*/../*) echo "bundle: $3 '$m' must be relative to $from and inside it" >&2; exit 1 ;; esac
    mkdir -p "$out/$(dirname "$m")"
    cp -rL "$from/$m" "$out/$(dirname "$m")/"
  done
}

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
shopt -s nullglob
programs=()
for g in "${only[@]}"; do
  matched=("$build"/bin/$g)
  [ ${#matched[@]} -gt 0 ] || { echo "bundle: nothing matches $build/bin/$g" >&2; exit 1; }
  programs+=("${matched[@]}")
done
for p in "${programs[@]}"; do
  [ -f "$p" ] && [ -x "$p" ] || continue
  cp "$p" "$out/bin/"
  copy_deps "$p"
done

mpi_note=""
mpi_libs=("$out"/lib/libmpi.so.*)  # nullglob: empty when no program links MPI
if [ ${#mpi_libs[@]} -gt 0 ] && command -v ompi_info >/dev/null; then
  ompi_path() { ompi_info --path "$1" --parsable | sed -n "s/^path:$1://p"; }
  mkdir -p "$out/lib/openmpi"
  cp -L "$(ompi_path pkglibdir)"/*.so "$out/lib/openmpi/"
  for c in "$out"/lib/openmpi/*.so; do copy_deps "$c"; done
  pmix_lib=$(readlink -f "$(ldconfig -p | sed -n 's/.*libpmix.so.2 .*=> //p' | head -n1)")
  pmix_dir=$(dirname "$pmix_lib")/pmix
  if [ -d "$pmix_dir" ]; then
    mkdir -p "$out/lib/pmix"
    cp -L "$pmix_dir"/*.so "$out/lib/pmix/"
    for c in "$out"/lib/pmix/*.so; do copy_deps "$c"; done
  fi
  # The launcher: mpirun is orterun; orted is what it would start on other nodes (carried, unused here).
  bindir=$(ompi_path bindir)
  cp -L "$bindir/orterun" "$bindir/orted" "$out/bin/"
  copy_deps "$out/bin/orterun"; copy_deps "$out/bin/orted"
  ln -s orterun "$out/bin/mpirun"; ln -s orterun "$out/bin/mpiexec"
  mkdir -p "$out/share" "$out/etc"
  [ -d "$(ompi_path pkgdatadir)" ] && cp -r "$(ompi_path pkgdatadir)" "$out/share/openmpi"
  for f in openmpi-mca-params.conf openmpi-default-hostfile; do
    [ -f "$(ompi_path sysconfdir)/$f" ] && cp "$(ompi_path sysconfdir)/$f" "$out/etc/"
  done
  # PMIx's help texts and parameter file (Debian keeps both in pmix2/share); the file's component path
  # names the system's plugin folder, so it is left out (env.sh names the bundle's).
  pmix_share=$(dirname "$(dirname "$pmix_lib")")/share
  [ -d "$pmix_share/pmix" ] && cp -r "$pmix_share/pmix" "$out/share/pmix"
  [ -f "$pmix_share/pmix-mca-params.conf" ] &&
    grep -v '^[[:space:]]*mca_base_component_path' "$pmix_share/pmix-mca-params.conf" > "$out/etc/pmix-mca-params.conf"
  mpi_note=1
fi

for w in "${with[@]}"; do copy_extra "$root" "$w" --with; done
for w in "${with_build[@]}"; do copy_extra "$build" "$w" --with-build; done

elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c4 "$1")" = $'\x7fELF' ]; }
for p in "$out"/bin/*; do elf "$p" && patchelf --set-rpath '$ORIGIN/../lib' "$p"; done
for l in "$out"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$l"; done
for l in "$out"/lib/openmpi/*.so "$out"/lib/pmix/*.so; do patchelf --set-rpath '$ORIGIN/..' "$l"; done

cat > "$out/env.sh" <<'ENV'
# source this file before running a bundled program (bash): points Open MPI and PMIx at the bundle
# (Open MPI's relocation variables: OPAL_PREFIX and the install dirs Debian configured outside it).
bundle_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH=$bundle_dir/bin:$PATH   # mpirun, mpiexec: the bundle's launcher
export OPAL_PREFIX=$bundle_dir OPAL_EXEC_PREFIX=$bundle_dir OPAL_BINDIR=$bundle_dir/bin
export OPAL_LIBDIR=$bundle_dir/lib OPAL_PKGLIBDIR=$bundle_dir/lib/openmpi
export OPAL_DATAROOTDIR=$bundle_dir/share OPAL_DATADIR=$bundle_dir/share OPAL_PKGDATADIR=$bundle_dir/share/openmpi
export OPAL_SYSCONFDIR=$bundle_dir/etc
export PMIX_PREFIX=$bundle_dir PMIX_EXEC_PREFIX=$bundle_dir PMIX_BINDIR=$bundle_dir/bin
export PMIX_LIBDIR=$bundle_dir/lib PMIX_PKGLIBDIR=$bundle_dir/lib/pmix
export PMIX_DATAROOTDIR=$bundle_dir/share PMIX_DATADIR=$bundle_dir/share PMIX_PKGDATADIR=$bundle_dir/share/pmix
export PMIX_SYSCONFDIR=$bundle_dir/etc
export OMPI_MCA_mca_base_component_path=$bundle_dir/lib/openmpi
export PMIX_MCA_mca_base_component_path=$bundle_dir/lib/pmix
export OMPI_MCA_ess_singleton_isolated=1  # one rank without mpirun: no orted to start
export OMPI_MCA_btl=self,vader,tcp        # skip the InfiniBand/UCX probes a bare machine cannot answer
export OMPI_MCA_plm=isolated              # mpirun launches on this machine only: no ssh/rsh needed
unset bundle_dir
ENV
echo "bundle: $(ls "$out/bin" | wc -l) programs, $(ls "$out/lib" | grep -c '\.so') libraries$([ -n "$mpi_note" ] && echo ', Open MPI plugins and mpirun') in $out ($(du -sh "$out" | cut -f1))"
if [ -n "$pack" ]; then
  case $pack in /*) ;; *) pack=$PWD/$pack ;; esac
  tar -cJf "$pack.tmp" -C "$(dirname "$out")" "$(basename "$out")" && mv -f "$pack.tmp" "$pack"
  bytes=$(stat -c %s "$pack")
  echo "bundle: packed into $pack: $((bytes / 1048576)) MiB ($bytes bytes; the device tool carries 64 MiB at most)"
  [ "$bytes" -lt $((64 * 1048576)) ] || { echo "bundle: $pack is over the 64 MiB carry limit" >&2; exit 1; }
fi
