#!/usr/bin/env bash
# iris-generate end to end on a tiny model trained 3 steps on the sample (sentencepiece tokenizer of the
# prepared sample): a JSONL of {"prompt"}, {"messages"} (llama2-chat and medalpaca templates), {"instruction",
# "input"} and {"prompt_ids"} lines gives one answer per line in input order with every field; --prompt streams to stdout;
# bad input (unknown template, a prompt longer than max_position_embeddings, an id outside the vocabulary, a
# malformed line, messages without --template) exits 2 naming the line, and leaves no output file.
set -euo pipefail
src=$1 build=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
fail() { echo "FAIL: $*"; exit 1; }
gen=$build/bin/iris-generate
tok=$build/data/tokenizer.model
rm -rf runs out* *.jsonl && mkdir -p runs
cat >model.json <<'JSON'
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 128, "initializer_range": 0.05}
JSON
"$build/bin/iris-train" --model.config model.json --data.path "$build/data/sample_text" --data.tokenizer "$tok" \
  --train.seq_len 32 --train.micro_batch 2 --train.steps 3 --output.dir runs/tiny --checkpoint.dir runs/tiny/ckpt \
  >train.log 2>&1 || { tail -20 train.log; fail "training the tiny model"; }
ckpt=runs/tiny/ckpt

cat >prompts.jsonl <<'JSON'
{"id": "text", "prompt": "The retina is"}
{"id": "chat", "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is glaucoma?"}]}

{"id": 3, "prompt_ids": [1, 200, 300, 400]}
{"id": "turns", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "What is a cataract?"}]}
{"id": "alpaca", "instruction": "Answer this question truthfully", "input": "What is uveitis?"}
JSON
# medalpaca has no place for a system prompt (refused naming the line, as iris-tokenize does): drop it there.
sed 's/{"role": "system", "content": "Answer briefly."}, //' prompts.jsonl >prompts.medalpaca.jsonl
cp prompts.jsonl prompts.llama2-chat.jsonl
for t in llama2-chat medalpaca; do
  "$gen" --checkpoint $ckpt --tokenizer "$tok" --template $t --templates-dir "$src/configs/templates" \
    --input prompts.$t.jsonl --output out.$t.jsonl --max-new-tokens 12 --batch 3 >gen.$t.log 2>&1 \
    || { cat gen.$t.log; fail "iris-generate --template $t"; }
  /usr/bin/python3 - out.$t.jsonl <<'PY' || fail "answers of $t"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["id"] for r in rows] == ["text", "chat", "3", "turns", "alpaca"], [r["id"] for r in rows]
for r in rows:
    assert set(r) == {"id", "completion", "completion_ids", "prompt_tokens", "completion_tokens", "finish_reason"}, r
    assert isinstance(r["completion"], str) and r["finish_reason"] in ("eos", "stop", "length"), r
    assert r["completion_tokens"] == len(r["completion_ids"]) and 1 <= len(r["completion_ids"]) <= 12, r
    assert r["finish_reason"] != "length" or len(r["completion_ids"]) == 12, r
assert rows[2]["prompt_tokens"] == 4, rows[2]
print("ok  ", sys.argv[1], [(r["prompt_tokens"], r["completion_tokens"], r["finish_reason"]) for r in rows])
PY
done
[ ! -e out.llama2-chat.jsonl.tmp ] || fail "the temporary output is left behind"

"$gen" --checkpoint $ckpt --tokenizer "$tok" --prompt "The optic nerve" --max-new-tokens 8 >stream.out 2>stream.log \
  || { cat stream.log; fail "--prompt"; }
[ -s stream.out ] || fail "--prompt printed nothing"
grep -q "new tokens, finish_reason" stream.log || fail "--prompt did not report its finish"
echo "ok   --prompt streamed: $(head -c 80 stream.out)"

expect_bad() {  # name, expected message part, iris-generate arguments...
  local name=$1 want=$2; shift 2
  rm -f bad.out.jsonl bad.out.jsonl.tmp
  set +e
  "$gen" --checkpoint $ckpt --tokenizer "$tok" --templates-dir "$src/configs/templates" --output bad.out.jsonl \
    --max-new-tokens 4 "$@" >bad.$name.log 2>&1
  local status=$?
  set -e
  [ $status -eq 2 ] || { cat bad.$name.log; fail "$name: exit status $status, expected 2"; }
  grep -qF -- "$want" bad.$name.log || { cat bad.$name.log; fail "$name: no \"$want\" in the message"; }
  [ ! -e bad.out.jsonl ] && [ ! -e bad.out.jsonl.tmp ] || fail "$name: an output file was written"
  echo "ok   $name: $(grep -m1 error bad.$name.log | cut -c1-160)"
}
good='{"id": "ok", "prompt_ids": [1, 5]}'
long=$(/usr/bin/python3 -c 'import json; print(json.dumps({"id": "long", "prompt_ids": [7] * 129}))')
printf '%s\n%s\n' "$good" "$long" >long.jsonl
printf '%s\n%s\n%s\n' "$good" "$good" '{"id": "v", "prompt_ids": [1, 2048]}' >vocab.jsonl
printf '%s\n%s\n' "$good" '{"id": "m", "prompt": "unfinished' >malformed.jsonl
printf '%s\n' '{"id": "c", "messages": [{"role": "user", "content": "Hi"}]}' >chat.jsonl
expect_bad unknown_template "no-such-template" --template no-such-template --input prompts.jsonl
expect_bad too_long "long.jsonl:2: the prompt has 129 tokens, more than the model's max_position_embeddings (128)" \
  --input long.jsonl
expect_bad outside_vocab "vocab.jsonl:3: token 1 (id 2048) is outside the vocabulary [0, 2048)" --input vocab.jsonl
expect_bad malformed "malformed.jsonl:2: malformed JSON" --input malformed.jsonl
expect_bad no_template "chat.jsonl:1: a \"messages\" or \"instruction\" record needs --template" --input chat.jsonl

# iris-slurm --task generate: a CPU job (tp = --cpu-ranks) that runs here as it is, with mpirun as launcher.
"$build/bin/iris-slurm" --task generate --model model.json --cpu-ranks 2 --init-from $ckpt --tokenizer "$tok" \
  --data prompts.llama2-chat.jsonl --run-dir runs/genjob --train-arg=--template=llama2-chat \
  --train-arg=--templates-dir="$src/configs/templates" --train-arg=--max-new-tokens=12 --train-arg=--batch=3 \
  --output generate.sbatch >slurm.log 2>&1 || { cat slurm.log; fail "iris-slurm --task generate"; }
bash -n generate.sbatch || fail "generate.sbatch is not valid bash"
SLURM_JOB_ID=0 SLURM_JOB_NUM_NODES=1 IRIS_LAUNCHER=mpirun bash generate.sbatch >job.log 2>&1 \
  || { cat job.log; fail "the generated job failed"; }
/usr/bin/python3 - runs/genjob/answers.jsonl out.llama2-chat.jsonl <<'PY' || fail "the job's answers (tp 2) differ from tp 1"
import json, sys
a, b = ([json.loads(l)["completion_ids"] for l in open(f)] for f in sys.argv[1:])
assert a == b, (a, b)
print("ok   iris-slurm --task generate: the job's tp-2 answers equal the tp-1 run")
PY
set +e
"$build/bin/iris-slurm" --task generate --model model.json --init-from $ckpt --data prompts.jsonl \
  --output gpu.sbatch >slurm_gpu.log 2>&1
status=$?
set -e
[ $status -eq 2 ] && grep -q "cpu-ranks" slurm_gpu.log && [ ! -e gpu.sbatch ] || fail "a GPU generate job was not refused"
