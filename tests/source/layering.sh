#!/usr/bin/env bash
# Layers point one way (docs/design.md, "Architecture"): fails, naming file and line, when a folder
# includes from a layer above it. $1: the source root.
#   src/core      includes nothing of ours but src/core
#   src/kernels   src/core only (no parallel/, src/model/, src/train/, io/)
#   parallel/     src/core only (no src/model/, src/kernels/, src/train/, src/plan/, io/)
#   io/           src/core only
#   src/model/    src/core, src/kernels, parallel, io (no src/train/, src/plan/, tools/)
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
bad=0
check() {  # check FOLDER FORBIDDEN-REGEX
  local hits
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"($2)/" "$1" \
    --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layering: $1 must not include from $2:"
    echo "$hits" | sed 's/^/  /'
    bad=1
  fi
}
check src/core 'src/kernels|src/model|src/train|src/plan|src/infer|src/eval|parallel|io|tools|bench'
check src/kernels 'src/model|src/train|src/plan|src/infer|src/eval|parallel|io|tools|bench'
check parallel 'src/kernels|src/model|src/train|src/plan|src/infer|src/eval|io|tools|bench'
check io 'src/kernels|src/model|src/train|src/plan|src/infer|src/eval|parallel|tools|bench'
check src/model 'src/train|src/plan|src/infer|src/eval|tools|bench'
[ $bad -eq 0 ] && echo "layering: every include points down"
exit $bad
