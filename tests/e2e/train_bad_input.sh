#!/usr/bin/env bash
# Bad input to iris-train: each case must exit non-zero, print a message naming the file/key, and
# leave no output directory behind.
set -uo pipefail
src=$1 build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$PWD
cd "$src"
fail=0
data=(--data.path "$build/data/sample_text" --data.tokenizer "$build/data/tokenizer.model")

expect_failure() {  # name, expected text, args...
  local name=$1 text=$2; shift 2
  local out="$work/out_$name"
  rm -rf "$out"
  if "$build/bin/iris-train" "$@" --output.dir "$out" >"$work/$name.log" 2>&1; then
    echo "FAIL $name: exit status 0"; fail=1; return
  fi
  if ! grep -qF -- "$text" "$work/$name.log"; then
    echo "FAIL $name: message lacks '$text':"; cat "$work/$name.log"; fail=1; return
  fi
  if [ -e "$out" ]; then echo "FAIL $name: left $out behind"; fail=1; return; fi
  echo "ok   $name: $(grep -m1 -F -- "$text" "$work/$name.log")"
}

expect_failure missing_config "/nonexistent/run.ini" --config /nonexistent/run.ini
printf '[train]\nsteps = 5\nbogus_key = 1\n' >"$work/unknown.ini"
expect_failure unknown_key "bogus_key" --config "$work/unknown.ini"
expect_failure unknown_flag "train.bogus" --config configs/train/tiny-cpu.ini --train.bogus=1
sed 's/"num_attention_heads": 8/"num_attention_heads": 6/' configs/models/tiny.json >"$work/bad_heads.json"
expect_failure heads_do_not_divide "bad_heads.json" --config configs/train/tiny-cpu.ini "${data[@]}" --model.config "$work/bad_heads.json"
expect_failure missing_tokenizer "/nonexistent/tokenizer.model" --config configs/train/tiny-cpu.ini \
  --data.path "$build/data/sample_text" --data.tokenizer /nonexistent/tokenizer.model
expect_failure missing_data "/nonexistent/corpus" --config configs/train/tiny-cpu.ini --data.path /nonexistent/corpus \
  --data.tokenizer "$build/data/tokenizer.model"
expect_failure missing_model_config "/nonexistent/model.json" --config configs/train/tiny-cpu.ini "${data[@]}" \
  --model.config /nonexistent/model.json
expect_failure bad_value "train.micro_batch" --config configs/train/tiny-cpu.ini "${data[@]}" --train.micro_batch=0
# train.device=cuda without a GPU (or in a build without CUDA) is refused at once, before the host weights
# of a large model are allocated: llama2-7b would take minutes to initialise.
if ! nvidia-smi -L >/dev/null 2>&1; then
  start=$SECONDS
  expect_failure cuda_without_gpu "train.device=cuda" --config configs/train/tiny-cpu.ini --data.path "$build/data/sample_text" \
    --model.config configs/models/llama2-7b.json --train.device cuda
  [ $((SECONDS - start)) -le 20 ] || { echo "FAIL cuda_without_gpu: took $((SECONDS - start)) s"; fail=1; }
fi
exit $fail
