#!/usr/bin/env bash
# Generation benchmark on the CPU: iris-generate vs transformers generate() on the same random ~125M Llama
# (bench/generate_hf.py make: C 768, L 12, NH 12, NKV 4, F 2048, V 32000, fp32), prompts of 512 tokens,
# 128 new tokens, greedy, batch 1 and 16, the same thread count, one after the other in this invocation.
# Prints prefill and decode tokens/s of both and the ratios Iris/HF.
# Usage: bench/generate_bench.sh BUILD_DIR [PYTHON] [WORK_DIR]   (PYTHON: the tools/setup-pyref.sh environment)
# IRIS_BENCH_THREADS (default 2), IRIS_BENCH_BATCHES (default "1 16"), IRIS_BENCH_NEW (default 128).
# LLAMA_CPP_DIR: a llama.cpp source tree built with `cmake -B build -DGGML_NATIVE=ON` (targets llama-bench and
# llama-batched-bench): the same weights are then written as GGUF f32 and f16 (bench/generate_gguf.py) and
# llama.cpp's prefill and decode tokens/s at the same thread count are printed beside Iris's, with the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
python=${2:-$root/.venv-ref/bin/python}
work=${3:-$build/bench-generate}
threads=${IRIS_BENCH_THREADS:-2}
new=${IRIS_BENCH_NEW:-128}
mkdir -p "$work"
[ -f "$work/model/prompts.jsonl" ] || "$python" "$root/bench/generate_hf.py" make "$work/model"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); threads $threads; prompt 512, $new new tokens"
for b in ${IRIS_BENCH_BATCHES:-1 16}; do
  head -n "$b" "$work/model/prompts.jsonl" >"$work/prompts.$b.jsonl"
  OMP_NUM_THREADS=$threads "$build/bin/iris-generate" --hf "$work/model" --input "$work/prompts.$b.jsonl" \
    --output "$work/out.$b.jsonl" --max-new-tokens "$new" --batch "$b" --ignore-eos --greedy >"$work/iris.$b.log" 2>&1 \
    || { cat "$work/iris.$b.log"; exit 1; }
  line=$(grep "prefill:" "$work/iris.$b.log")
  ip=$(sed -nE 's/.*prefill: [0-9]+ prompt tokens in [0-9.]+ s \(([0-9.]+) tokens\/s\).*/\1/p' <<<"$line")
  id=$(sed -nE 's/.*decode: [0-9]+ tokens in [0-9.]+ s \(([0-9.]+) tokens\/s\).*/\1/p' <<<"$line")
  echo "iris batch $b: prefill $ip tokens/s, decode $id tokens/s"
  hf=$("$python" "$root/bench/generate_hf.py" bench "$work/model" --batch "$b" --new "$new" --threads "$threads")
  echo "$hf"
  hp=$(sed -nE 's/.*prefill ([0-9.]+) tokens.*/\1/p' <<<"$hf")
  hd=$(sed -nE 's/.*decode ([0-9.]+) tokens.*/\1/p' <<<"$hf")
  awk -v a="$ip" -v b="$hp" -v c="$id" -v d="$hd" -v n="$b" \
    'BEGIN { printf "ratio iris/hf batch %d: prefill %.2f, decode %.2f\n", n, a / b, c / d }'
  [ -n "${LLAMA_CPP_DIR:-}" ] || continue
  for dtype in f32 f16; do
    gguf=$work/model-$dtype.gguf
    [ -f "$gguf" ] || "$python" "$root/bench/generate_gguf.py" "$work/model" "$gguf" --dtype "$dtype" \
      --gguf-py "$LLAMA_CPP_DIR/gguf-py" >/dev/null
    # llama-batched-bench: prompt processing (PP) and text generation (TG) speeds of B parallel sequences.
    "$LLAMA_CPP_DIR/build/bin/llama-batched-bench" -m "$gguf" -t "$threads" -c $(( b * (512 + new) + 16 )) -b 2048 \
      -ub 512 -npp 512 -ntg "$new" -npl "$b" >"$work/llamacpp.$dtype.$b.log" 2>&1 || { tail "$work/llamacpp.$dtype.$b.log"; exit 1; }
    row=$(grep -E "^\|\s+512 \|" "$work/llamacpp.$dtype.$b.log" | tail -n 1)
    lp=$(awk -F'|' '{ gsub(/ /, "", $7); print $7 }' <<<"$row")
    ld=$(awk -F'|' '{ gsub(/ /, "", $9); print $9 }' <<<"$row")
    echo "llama.cpp $dtype batch $b: prefill $lp tokens/s, decode $ld tokens/s"
    awk -v a="$ip" -v b="$lp" -v c="$id" -v d="$ld" -v n="$b" -v t="$dtype" \
      'BEGIN { printf "ratio iris(fp32)/llama.cpp(%s) batch %d: prefill %.2f, decode %.2f\n", t, n, a / b, c / d }'
  done
done
