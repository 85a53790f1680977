"""Random-weight Hugging Face Llama models with the bundled sentencepiece tokenizer, for iris-eval's
reference tests (check_mcq.py, check_ppl.py).

CONFIGS: "gqa" (4 query heads over 2 KV heads, untied head) and "tied_llama3" (tied embeddings, Llama 3 rope
scaling, 4 heads over 1 KV head); vocabulary = data/sample/tokenizer.model's 2,048 pieces. Weights N(0, 0.08)
(matrices) and 1 + N(0, 0.1) (norms), seeded, fp32, eager attention. Each directory also holds the slow
LlamaTokenizer (sentencepiece, legacy) so lm_eval --model hf and iris-eval read the same tokenizer.
"""
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER = os.path.join(REPO, "data", "sample", "tokenizer.model")
BASE = dict(vocab_size=2048, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=512,
            tie_word_embeddings=False, hidden_act="silu", bos_token_id=1, eos_token_id=2)
CONFIGS = {
    "gqa": (dict(), 3001),
    "tied_llama3": (dict(tie_word_embeddings=True, num_key_value_heads=1, rope_theta=500000.0,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64}), 3002),
}


def build(out_dir, name):
    """Writes OUT_DIR/NAME (config, safetensors, tokenizer) once; returns (model, tokenizer, dir)."""
    overrides, seed = CONFIGS[name]
    d = os.path.join(out_dir, name)
    model = LlamaForCausalLM(LlamaConfig(attn_implementation="eager", **dict(BASE, **overrides))).float().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.08)
            else:
                p.copy_(1.0 + torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.1)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    tok = LlamaTokenizer(vocab_file=TOKENIZER, legacy=True, add_bos_token=True, add_eos_token=False)
    tok.save_pretrained(d)
    return model, tok, d


if __name__ == "__main__":  # writes OUT_DIR/<config> for every config (the MPI layout test's models)
    import sys
    for config_name in CONFIGS:
        build(sys.argv[1], config_name)
    print("models in", sys.argv[1])
