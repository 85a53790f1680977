# Shared by the MPI test scripts: how to launch ranks on this machine, and the tiny test models.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1   # many ranks on few cores: one thread each
mpi() { local n=$1; shift; mpirun --oversubscribe -np "$n" "$@"; }

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
  /usr/bin/python3 - "$1/metrics.jsonl" "$2" <<'PY'
import json, sys
norms = [json.loads(l)["grad_norm"] for l in open(sys.argv[1])]
clipped = sum(n > float(sys.argv[2]) for n in norms)
print(f"{sys.argv[1]}: {clipped} of {len(norms)} steps clipped to grad_clip {sys.argv[2]} (max norm {max(norms):.3f})")
sys.exit(0 if clipped else 1)
PY
}
