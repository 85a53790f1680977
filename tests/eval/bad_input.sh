#!/usr/bin/env bash
# iris-eval refuses bad records before loading any model, naming FILE:LINE and what was expected, with exit
# status 2: a record missing a field, an answer index out of range, an empty choice (generic, medmcqa,
# pubmedqa), malformed JSON, a text record without its reference, a ppl JSONL record without "text".
#   bash tests/eval/bad_input.sh <source dir> <iris-eval>
set -uo pipefail
src=$1 ev=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tok=$src/data/sample/tokenizer.model
fail=0
expect() {  # name expected-substring task args...
  local name=$1 want=$2; shift 2
  "$ev" "$@" --hf "$work/no-model" --tokenizer "$tok" --output "$work/out.$name" >"$work/$name.log" 2>&1
  local status=$?
  if [ "$status" != 2 ]; then echo "FAIL $name: exit status $status, expected 2"; cat "$work/$name.log"; fail=1; return; fi
  if ! grep -qF -- "$want" "$work/$name.log"; then
    echo "FAIL $name: message lacks '$want':"; cat "$work/$name.log"; fail=1; return
  fi
  echo "ok $name: $(grep -F -- "$want" "$work/$name.log" | head -1)"
}
good='{"question": "Q?", "choices": ["a", "b"], "answer": 1}'
printf '%s\n%s\n' "$good" '{"question": "Q?", "choices": ["a", "b"]}' >"$work/missing.jsonl"
expect generic_missing "$work/missing.jsonl:2: missing field \"answer\"" mcq --format generic --input "$work/missing.jsonl"
printf '%s\n\n%s\n' "$good" '{"question": "Q?", "choices": ["a", "b", "c"], "answer": 3}' >"$work/range.jsonl"
expect generic_range "$work/range.jsonl:3: \"answer\" is 3, expected an index 0-2" mcq --format generic --input "$work/range.jsonl"
printf '%s\n' '{"question": "Q?", "choices": ["a", "  "], "answer": 0}' >"$work/empty.jsonl"
expect generic_empty "$work/empty.jsonl:1: choice 1 is empty" mcq --format generic --input "$work/empty.jsonl"
printf '%s\n' '{"question": "Q?", "opa": "a", "opb": "b", "opd": "d", "cop": 0}' >"$work/med_missing.jsonl"
expect medmcqa_missing "$work/med_missing.jsonl:1: missing field \"opc\"" mcq --format medmcqa --input "$work/med_missing.jsonl"
printf '%s\n' '{"question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 4}' >"$work/med_range.jsonl"
expect medmcqa_range "$work/med_range.jsonl:1: \"cop\" is 4, expected 0-3" mcq --format medmcqa --input "$work/med_range.jsonl"
printf '%s\n' '{"question": "Q?", "opa": "a", "opb": "", "opc": "c", "opd": "d", "cop": 1}' >"$work/med_empty.jsonl"
expect medmcqa_empty "$work/med_empty.jsonl:1: choice \"opb\" is empty" mcq --format medmcqa --input "$work/med_empty.jsonl"
printf '%s\n' '{"question": "Q?", "context": {"contexts": ["c"]}, "final_decision": "perhaps"}' >"$work/pub.jsonl"
expect pubmedqa_range "$work/pub.jsonl:1: \"final_decision\" is \"perhaps\", expected yes, no or maybe" mcq --format pubmedqa --input "$work/pub.jsonl"
printf '%s\n' '{"question": "Q?", "final_decision": "yes"}' >"$work/pub_missing.jsonl"
expect pubmedqa_missing "$work/pub_missing.jsonl:1: missing field \"context\"" mcq --format pubmedqa --input "$work/pub_missing.jsonl"
printf '%s\n%s\n' "$good" '{"question": "Q?", "choices": ["a", "b"], "answer": 1' >"$work/malformed.jsonl"
expect malformed "$work/malformed.jsonl:2: malformed JSON" mcq --format generic --input "$work/malformed.jsonl"
printf '%s\n' '{"question": "Q?"}' >"$work/text.jsonl"
expect text_missing "$work/text.jsonl:1: missing field \"reference\"" text --input "$work/text.jsonl"
printf '%s\n%s\n' '{"text": "a"}' '{"body": "b"}' >"$work/ppl.jsonl"
expect ppl_missing "$work/ppl.jsonl:2: expected an object with a string field \"text\"" ppl --input "$work/ppl.jsonl" --seq-len 8
expect bad_format "--format must be medmcqa, pubmedqa or generic" mcq --format usmle --input "$work/missing.jsonl"
[ "$fail" = 0 ] && echo "bad input: all named" || exit 1
