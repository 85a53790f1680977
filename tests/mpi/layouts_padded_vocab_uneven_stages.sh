#!/usr/bin/env bash
# Two layout cases layouts_match_single_rank.sh does not reach, each equal to the single-rank run
# (per-step loss and grad_norm within relative 1e-5, final weights within relative 1e-4, fp32):
#  - a vocabulary that needs padding: vocab_size 2050 at tp=4 is padded to 2052 rows; the padded
#    logits must never enter the loss, and export drops the padded rows (ids stay < 2048 = the sample
#    tokenizer's vocabulary, so every token is valid);
#  - uneven pipeline stages given with --parallel.stage_layers (1,3 and 3,1 for 4 layers at pp=2).
# A GQA model with 8 query heads over 4 KV heads, so tp=4 divides both. Tied and untied embeddings.
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
write_model() {  # path, tied
  cat >"$1" <<JSON
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
 "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 2050, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": $2, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
}
fail=0
for tied in false true; do
  write_model "model_$tied.json" "$tied"
  equivalence_args "model_$tied.json"
  rm -rf "ref_$tied"
  "$build/bin/iris-train" "${common[@]}" --train.grad_accum 4 --output.dir "ref_$tied" > "ref_$tied.log" 2>&1
  expect_clipping "ref_$tied" 1.0 || { echo "FAIL: the reference run never clips; lower optim.grad_clip"; fail=1; }
  # tp,pp,dp,stage_layers ("-": even split)
  for layout in 4,1,1,- 4,1,2,- 1,2,1,1:3 4,2,1,1:3 2,2,2,3:1; do
    IFS=, read -r tp pp dp stages <<<"$layout"
    out="run_${tied}_${tp}${pp}${dp}_${stages/:/}"
    extra=()
    [ "$stages" = - ] || extra=(--parallel.stage_layers "${stages/:/,}")
    run_and_compare "ref_$tied" "$out" "$tp" "$pp" "$dp" "${extra[@]}" || { fail=1; continue; }
    if [ "$stages" != - ]; then  # the split really was uneven
      grep -q "rank 0 holds layers \[0, ${stages%:*})" "$out.log" || { echo "FAIL $out: stage 0 does not hold ${stages%:*} layers"; fail=1; }
    fi
  done
done
exit $fail
