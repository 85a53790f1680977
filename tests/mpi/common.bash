# Shared by the MPI test scripts: how to launch ranks on this machine, and the tiny test models.
# Python (numpy) for the comparisons: $IRIS_PYTHON when set (the GPU machine's, via tools/gpu-check.sh), else /usr/bin/python3.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1   # many ranks on few cores: one thread each
mpi() { local n=$1; shift; mpirun --oversubscribe -np "$n" "$@"; }

# Runs iris-train on N ranks into NAME (log NAME.log, replacing an older NAME); on failure prints FAIL and
# the log's end, sets fail=1 and returns 1.
run_iris() {  # name, ranks, iris-train flags...
  local name=$1 n=$2; shift 2
  rm -rf "$name"
  if ! mpi "$n" "$build/bin/iris-train" "$@" --output.dir "$name" >"$name.log" 2>&1; then
    echo "FAIL $name: run failed"; tail -20 "$name.log"; fail=1; return 1
  fi
}

# The bundled ophthalmology Q&A sample as an SFT dataset (medalpaca template) at PREFIX (its directory must exist).
tokenize_sample_sft() {  # prefix
  "$build/bin/iris-tokenize" --tokenizer "$build/data/tokenizer.model" --sft --template medalpaca \
    --templates-dir "$src/configs/templates" --input "$src/data/sample/sft/ophthalmology_qa.jsonl" --output "$1" \
    --progress-seconds 0 >tokenize.log 2>&1 || { cat tokenize.log; exit 1; }
}

# A tiny GQA Llama (4 query heads over 2 KV heads, 4 layers) whose vocabulary matches the sample tokenizer.
write_tiny_model() {  # path, tied(true|false)
  cat >"$1" <<JSON
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": $2, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
}

# Fails unless some step of run DIR had a global grad norm above CLIP, i.e. clipping really ran
# (the clipped update is then part of what an equivalence test compares).
expect_clipping() {  # run dir, optim.grad_clip
  "${IRIS_PYTHON:-/usr/bin/python3}" - "$1/metrics.jsonl" "$2" <<'PY'
import json, sys
norms = [json.loads(l)["grad_norm"] for l in open(sys.argv[1])]
clipped = sum(n > float(sys.argv[2]) for n in norms)
print(f"{sys.argv[1]}: {clipped} of {len(norms)} steps clipped to grad_clip {sys.argv[2]} (max norm {max(norms):.3f})")
sys.exit(0 if clipped else 1)
PY
}

# The settings of the layout-equivalence runs: 10 steps of 8 samples × 16 tokens, clipping active,
# several ZeRO-1 buckets. Sets the array `common` for the model config $1.
equivalence_args() {  # model config
  common=(--model.config "$1" --data.path "$build/data/sample_text" --train.seq_len 16
          --train.micro_batch 2 --train.steps 10 --optim.lr 1e-2 --optim.warmup_steps 2 --optim.min_lr 1e-3
          --train.log_every 100 --output.save_weights true --parallel.bucket_mb 0.01 --optim.grad_clip 1.0)
}

# Runs iris-train with "${common[@]}" at (tp, pp, dp), global batch 4 micro-batches of 2 (grad_accum
# 4/dp), into OUT (log OUT.log), then compares it with run REF (loss and grad_norm rel 1e-5, weights
# rel 1e-4). Prints FAIL and returns 1 on any failure. Extra iris-train flags may follow.
run_and_compare() {  # ref, out, tp, pp, dp, extra flags...
  local ref=$1 out=$2 tp=$3 pp=$4 dp=$5
  shift 5
  rm -rf "$out"
  if ! mpi $((tp * pp * dp)) "$build/bin/iris-train" "${common[@]}" --parallel.tp "$tp" --parallel.pp "$pp" \
       --train.grad_accum $((4 / dp)) "$@" --output.dir "$out" >"$out.log" 2>&1; then
    echo "FAIL $out (tp=$tp pp=$pp dp=$dp $*): run failed"; tail -20 "$out.log"; return 1
  fi
  "${IRIS_PYTHON:-/usr/bin/python3}" "$src/tests/mpi/compare_runs.py" "$ref" "$out" 1e-5 1e-4 || { echo "FAIL $out (tp=$tp pp=$pp dp=$dp $*)"; return 1; }
}

# The count of gradient buckets rank 0 issued during the first step's backward (its log line under
# parallel.overlap_grad_reduce), or nothing when the log has no such line.
buckets_issued_in_backward() {  # log
  sed -n 's/.*gradient reduction: \([0-9]*\) of [0-9]* buckets issued during the backward.*/\1/p' "$1" | head -n1
}
