#!/usr/bin/env bash
# The function-length check can fail: of five generated functions (free, member defined in a class,
# constructor with brace initialisers, one with braces inside strings and comments, a 100-line one)
# exactly the four over 100 lines are named, with their lengths. $1: the source root.
set -uo pipefail
root=$1
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
body() { for ((i = 0; i < $1; ++i)); do echo "  x += $i;"; done; }
{
  echo 'namespace n {'
  echo 'int free_fn(int x) {'; body 99; echo '}'                      # 101 lines
  echo 'struct S {'; echo '  int member(int x) const {'; body 99; echo '  }'; echo '};'   # 101
  echo 'S::S(int a) : a_{a}, b_(a) {'; body 99; echo '}'                # 101
  echo 'void strings() {'; echo '  const char* s = "}}}";  // }'; echo '  /* } */'; body 97; echo "  char c = '}';"; echo '}'  # 102
  echo 'int fits(int x) {'; body 98; echo '}'                           # 100
  echo '}  // namespace n'
} > "$scratch/sample.cpp"
out=$(python3 "$root/tests/source/function_length.py" "$scratch" "$scratch/sample.cpp"); rc=$?
echo "$out"
[ $rc -eq 1 ] || { echo "FAIL: exit $rc, expected 1"; exit 1; }
for want in "free_fn is 101" "member is 101" "S::S is 101" "strings is 102"; do
  grep -q "$want lines" <<<"$out" || { echo "FAIL: '$want' not reported"; exit 1; }
done
! grep -q "fits" <<<"$out" || { echo "FAIL: a 100-line function was refused"; exit 1; }
echo "function_length self-test: the four long functions named, the 100-line one accepted"
