# Shared by the fault scripts: launching ranks, a model whose checkpoint is ~10 MB (so a few MiB of disk
# or file-size limit is "full"), and assertions on exit status, message and what is left on disk.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
fail=0

# hidden 128, F 256, 2 layers, V 2048: weights 0.85 M floats, a checkpoint with Adam moments ~10 MB.
write_big_model() {  # path
  cat >"$1" <<JSON
{"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048, "rms_norm_eps": 1e-5,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 64, "initializer_range": 0.05}
JSON
}

# iris-train on N ranks (N = 1: no mpirun) with the small-run settings, bounded by $BOUND seconds (default
# 120). SIGXFSZ is ignored inside each rank (Open MPI resets signal dispositions in the ranks it starts),
# so a file-size limit makes writes fail with EFBIG as a full disk does instead of killing the rank.
iris() {  # ranks, flags...
  local n=$1; shift
  local cmd=(bash -c 'trap "" XFSZ; exec "$@"' iris-rank "$build/bin/iris-train" --model.config "${MODEL:-model.json}"
             --data.path "$build/data/sample_text" --train.seq_len 16 --train.micro_batch 2 --train.log_every 1000
             --optim.warmup_steps 2 "$@")
  if [ "$n" -eq 1 ]; then timeout -k 5 "${BOUND:-120}" "${cmd[@]}"
  else timeout -k 5 "${BOUND:-120}" mpirun --oversubscribe -np "$n" "${cmd[@]}"; fi
}

# Passes when LOG's run ended with STATUS and LOG contains TEXT (an extended regex); else FAIL + log tail.
expect_exit() {  # name, status, actual status, log, text
  local name=$1 want=$2 got=$3 log=$4 text=$5
  if [ "$got" -ne "$want" ]; then
    echo "FAIL $name: exit status $got, expected $want$([ "$got" -eq 124 ] && echo ' (hung until the timeout)')"
    tail -15 "$log"; fail=1; return 1
  fi
  if ! grep -qE -- "$text" "$log"; then echo "FAIL $name: the log lacks /$text/"; tail -15 "$log"; fail=1; return 1; fi
  echo "ok   $name: exit $got: $(grep -m1 -oE -- ".{0,60}$text.{0,100}" "$log")"
}

# Passes when DIR holds exactly ENTRIES (space-separated, sorted) and each step_* in it verifies.
expect_dir() {  # name, dir, entries
  local name=$1 dir=$2 want=$3 got
  got=$(ls "$dir" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')
  if [ "$got" != "$want" ]; then echo "FAIL $name: $dir holds '$got', expected '$want'"; fail=1; return 1; fi
  for d in "$dir"/step_*; do
    [ -d "$d" ] || continue
    "$build/bin/iris-convert" verify --checkpoint "$d" >"$name.verify.log" 2>&1 \
      || { echo "FAIL $name: $d does not verify"; cat "$name.verify.log"; fail=1; return 1; }
  done
  echo "ok   $name: $dir holds $want, each checkpoint verifies"
}

# Passes when a run resumed from checkpoint DIR (step STEP) and finished.
expect_resume() {  # name, ranks, checkpoint dir, step, flags...
  local name=$1 n=$2 dir=$3 step=$4; shift 4
  iris "$n" --checkpoint.load "$dir" "$@" >"$name.log" 2>&1
  local rc=$?
  [ $rc -eq 0 ] && grep -q "resumed from $dir at step $step" "$name.log" \
    && echo "ok   $name: resumed from $dir at step $step and finished" \
    || { echo "FAIL $name: resume from $dir (step $step) exit $rc"; tail -10 "$name.log"; fail=1; }
}

# Mounts a tmpfs of SIZE on DIR when this machine allows it (root, or a user namespace); 1 when not.
mount_small_disk() {  # dir, size
  mkdir -p "$1"
  mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null
}
