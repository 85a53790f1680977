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
