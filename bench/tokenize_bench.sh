#!/usr/bin/env bash
# iris-tokenize with Llama 3's tokenizer against tiktoken and Hugging Face tokenizers, in one run
# (docs/benchmarks.md, "Tokenizer"). The bundled corpus (data/sample/corpus) is repeated into a JSONL
# file of at least 50 MB of text, one record per corpus file; every side encodes the same documents
# with 1 and 2 threads: iris-tokenize --workers N (whole program: reading, JSON, UTF-8 check, BPE,
# writing the int32 dataset), tiktoken's encode_ordinary_batch(num_threads=N) and tokenizers'
# encode_batch with RAYON_NUM_THREADS=N (encoding only, texts already in memory). MB/s are of text
# (UTF-8 bytes). Token counts must agree, or the run fails.
# Usage: bash bench/tokenize_bench.sh BUILD_DIR PYTHON [MB]   (needs BUILD_DIR/tokenizer_ref from the
#        tokenizer_reference test: ctest --test-dir BUILD_DIR -R tokenizer_reference)
set -euo pipefail
build=$(cd "$1" && pwd) py=$2 mb=${3:-50}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ref=$build/tokenizer_ref
[ -f "$ref/llama3/tokenizer.model" ] || { echo "no $ref: run ctest --test-dir $build -R tokenizer_reference" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$py" - "$src/data/sample/corpus" "$work/corpus.jsonl" "$mb" <<'PY'
import json, os, sys
corpus, out, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
texts = [open(os.path.join(corpus, n), encoding="utf-8").read() for n in sorted(os.listdir(corpus))]
size = sum(len(t.encode()) for t in texts)
reps = int(mb * 1e6 / size) + 1
with open(out, "w", encoding="utf-8") as f:
    for _ in range(reps):
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
print(f"corpus: {reps} x {len(texts)} documents, {reps * size / 1e6:.1f} MB of text", file=sys.stderr)
PY

cat >"$work/ref_side.py" <<'PY'
import base64, json, os, sys, time
kind, threads, ref, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
os.environ["RAYON_NUM_THREADS"] = str(threads)
texts = [json.loads(l)["text"] for l in open(path, encoding="utf-8")]
mb = sum(len(t.encode()) for t in texts) / 1e6
if kind == "tiktoken":
    import tiktoken
    ranks = {}
    for line in open(f"{ref}/llama3/tokenizer.model", "rb"):
        if line.strip():
            t, r = line.split()
            ranks[base64.b64decode(t)] = int(r)
    pat = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    enc = tiktoken.Encoding("llama3", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
    start = time.perf_counter()
    ids = enc.encode_ordinary_batch(texts, num_threads=threads)
else:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(f"{ref}/llama3-hf/tokenizer.json")
    start = time.perf_counter()
    ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "mb": mb, "tokens": sum(map(len, ids))}))
PY

declare -A secs toks
mbytes=0
for n in 1 2; do
  start=$(date +%s.%N)
  "$build/bin/iris-tokenize" --tokenizer "$ref/llama3/tokenizer.model" --input "$work/corpus.jsonl" \
    --output "$work/out$n" --workers $n --progress-seconds 0 >"$work/iris$n.log"
  end=$(date +%s.%N)
  secs[iris,$n]=$("$py" -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$end")
  # documents are [BOS] ids [EOS]: 2 framing tokens each
  read -r tokens docs < <(sed -n 's/^iris-tokenize: \([0-9]*\) documents, \([0-9]*\) tokens.*/\2 \1/p' "$work/iris$n.log")
  toks[iris,$n]=$((tokens - 2 * docs))
  for side in tiktoken tokenizers; do
    out=$("$py" "$work/ref_side.py" $side $n "$ref" "$work/corpus.jsonl")
    secs[$side,$n]=$("$py" -c "import json,sys; print(json.loads(sys.argv[1])['seconds'])" "$out")
    toks[$side,$n]=$("$py" -c "import json,sys; print(json.loads(sys.argv[1])['tokens'])" "$out")
    mbytes=$("$py" -c "import json,sys; print(json.loads(sys.argv[1])['mb'])" "$out")
  done
done
for k in "${!toks[@]}"; do
  [ "${toks[$k]}" = "${toks[iris,1]}" ] || { echo "token counts differ: $k ${toks[$k]} vs iris ${toks[iris,1]}" >&2; exit 1; }
done
printf 'text: %.1f MB, %s tokens (all sides agree)\n' "$mbytes" "${toks[iris,1]}"
printf '%-28s %8s %8s %10s %12s\n' side threads seconds "MB/s" "iris ratio"
for n in 1 2; do
  for side in iris tiktoken tokenizers; do
    s=${secs[$side,$n]}
    printf '%-28s %8d %8.2f %10.2f %12.2f\n' "$side" $n "$s" \
      "$("$py" -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$mbytes" "$s")" \
      "$("$py" -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$s" "${secs[iris,$n]}")"
  done
done
echo "(iris ratio = that side's time / iris-tokenize's time at the same thread count: > 1 means iris is faster)"
