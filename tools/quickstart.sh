#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, prepares the bundled
# ophthalmology sample (tokenizer + tokens) and trains the tiny Llama on the CPU with 4 MPI ranks
# on this machine: tensor parallel 2 × pipeline parallel 2 (oversubscribed where there are fewer
# cores). Extra arguments go to the pretraining iris-train (e.g. --train.steps=50). Then an SFT stage:
# the sample ophthalmology QA pairs in the medAlpaca format are tokenized with loss masks and the
# pretrained model is fine-tuned on the answers, starting from the pretraining run's final checkpoint.
# The losses are drawn into runs/quickstart/loss.png (tools/iris-plot) and written as TensorBoard events.
# (All of the small sample trains: holding out a tenth, e.g. --data.val_fraction 0.1 --eval.every 20
# --eval.batches all, adds val_loss to the plot but leaves the 4M model too weak to say anything in the SFT demo.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${IRIS_BUILD_DIR:-build}

tools/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" --target iris-train iris-tokenize iris-generate
tools/prepare-sample.sh "$build"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Four ranks share the cores: split the OpenMP threads between them.
threads=$(( $(nproc) / 4 )); [ "$threads" -ge 1 ] || threads=1
mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=$threads "$build/bin/iris-train" --config configs/train/tiny-cpu.ini \
  --parallel.tp 2 --parallel.pp 2 --train.grad_accum 4 --train.micro_batch 2 \
  --data.path "$build/data/sample_text" --data.tokenizer "$build/data/tokenizer.model" \
  --output.tensorboard true \
  --checkpoint.dir runs/quickstart/checkpoints "$@"
echo "metrics: runs/quickstart/metrics.jsonl, TensorBoard events: runs/quickstart/tb (tensorboard --logdir runs)"
tools/iris-plot runs/quickstart  # runs/quickstart/loss.png: loss against steps and tokens, and lr

# SFT: only the answer tokens (and the EOS closing each answer) are in the loss.
"$build/bin/iris-tokenize" --tokenizer "$build/data/tokenizer.model" --sft --template medalpaca \
  --input data/sample/sft/ophthalmology_qa.jsonl --output "$build/data/sample_sft" --progress-seconds 0
mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=$threads "$build/bin/iris-train" --config configs/train/tiny-cpu.ini \
  --train.task sft --data.path "$build/data/sample_sft" --data.tokenizer "$build/data/tokenizer.model" \
  --model.init_checkpoint runs/quickstart/checkpoints --parallel.tp 2 --parallel.pp 2 --train.grad_accum 4 \
  --train.micro_batch 2 --train.steps 15 --optim.lr 1e-3 --optim.min_lr 1e-4 --optim.warmup_steps 3 \
  --output.dir runs/quickstart-sft --checkpoint.dir runs/quickstart-sft/checkpoints
echo "SFT metrics: runs/quickstart-sft/metrics.jsonl"

# Ask the fine-tuned model two of the sample questions (medalpaca prompt, greedy). A 4M-parameter model
# trained for a few minutes answers poorly; the point is the path from training to answers.
/usr/bin/python3 - data/sample/sft/ophthalmology_qa.jsonl >runs/quickstart-sft/questions.jsonl <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1]).readlines()[:2]):  # the record without its answer
    r = json.loads(line)
    print(json.dumps({"id": f"q{i + 1}", "instruction": r["instruction"], "input": r["input"]}))
PY
"$build/bin/iris-generate" --checkpoint runs/quickstart-sft/checkpoints --tokenizer "$build/data/tokenizer.model" \
  --template medalpaca --input runs/quickstart-sft/questions.jsonl --output runs/quickstart-sft/answers.jsonl \
  --max-new-tokens 48 --greedy
/usr/bin/python3 - runs/quickstart-sft/questions.jsonl runs/quickstart-sft/answers.jsonl <<'PY'
import json, sys
questions = [json.loads(l) for l in open(sys.argv[1])]
for q, line in zip(questions, open(sys.argv[2])):
    a = json.loads(line)
    print(f"Q: {q['input']}\nA: {a['completion'].strip()}  [{a['completion_tokens']} tokens, {a['finish_reason']}]")
PY
