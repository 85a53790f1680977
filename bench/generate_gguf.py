#!/usr/bin/env python3
"""llama.cpp side of bench/generate_bench.sh: the benchmark's HF Llama (bench/generate_hf.py make) as a GGUF file.

  generate_gguf.py MODEL_DIR OUT.gguf --dtype f32|f16 --gguf-py LLAMA_CPP/gguf-py

Writes the same weights as llama.cpp's convert_hf_to_gguf.py does for a Llama (tensor names blk.N.*, q/k rows
permuted from HF's rotate-half order to GGML's interleaved RoPE, 1-D norms kept f32), with a placeholder
sentencepiece-style vocabulary of the model's size (the benchmark feeds token ids, so no text is tokenized).
convert_hf_to_gguf.py itself needs a tokenizer file, which the random benchmark model does not have.
"""
import argparse
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def permute(w, n_head, n_head_kv):
    heads = n_head_kv if n_head_kv is not None and n_head_kv != n_head else n_head
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--dtype", choices=["f32", "f16"], default="f32")
    p.add_argument("--gguf-py", required=True)
    a = p.parse_args()
    sys.path.insert(0, a.gguf_py)
    try:
        import sentencepiece  # noqa: F401  gguf-py's vocabulary helpers import it; this writer does not use them
    except ImportError:
        import types
        stub = types.ModuleType("sentencepiece")
        stub.SentencePieceProcessor = None
        sys.modules["sentencepiece"] = stub
    import gguf

    cfg = json.load(open(os.path.join(a.model, "config.json")))
    tensors = {}
    for f in sorted(os.listdir(a.model)):
        if f.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(a.model, f)))
    nh, nkv, L, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_hidden_layers"], cfg["vocab_size"]
    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("iris-generate-bench")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(L)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_dimension_count(cfg.get("head_dim", cfg["hidden_size"] // nh))
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if a.dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([b"<unk>", b"<s>", b"</s>"] + [f"<t{i}>".encode() for i in range(3, V)])
    w.add_token_scores([0.0] * V)
    w.add_token_types([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.NORMAL] * (V - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for l in range(L):
        for hf, gg in per_layer.items():
            names[f"model.layers.{l}.{hf}.weight"] = f"blk.{l}.{gg}.weight"
    for hf, t in tensors.items():
        t = t.astype(np.float32)
        if hf.endswith("q_proj.weight"):
            t = permute(t, nh, nh)
        elif hf.endswith("k_proj.weight"):
            t = permute(t, nh, nkv)
        if a.dtype == "f16" and t.ndim == 2:
            t = t.astype(np.float16)
        w.add_tensor(names[hf], t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{a.out}: {len(tensors)} tensors, {a.dtype}")


if __name__ == "__main__":
    main()
