#!/usr/bin/env bash
# The layering check can fail: a copy of the tree's layer folders with one upward include added to each
# checked folder in turn must be refused, naming that file. $1: the source root.
set -uo pipefail
root=$1
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
for case in "src/core:src/kernels/cpu/ops.h" "src/kernels:parallel/comm.h" "parallel:src/model/llama.h" \
            "io:src/train/config.h" "src/model:src/train/trainer.h"; do
  folder=${case%%:*} target=${case#*:}
  rm -rf "$scratch/tree"; mkdir -p "$scratch/tree"
  for d in src/core src/kernels parallel io src/model; do mkdir -p "$scratch/tree/$d"; done
  printf '#include "%s"\n' "$target" > "$scratch/tree/$folder/upward.cpp"
  out=$(bash "$root/tests/source/layering.sh" "$scratch/tree"); rc=$?
  if [ $rc -eq 0 ] || ! grep -q "$folder/upward.cpp:1" <<<"$out"; then
    echo "FAIL: an include of $target from $folder was not refused (rc $rc): $out"; exit 1
  fi
done
bash "$root/tests/source/layering.sh" "$root" >/dev/null || { echo "FAIL: the real tree is refused"; exit 1; }
echo "layering self-test: 5 upward includes refused, the tree accepted"
