#!/usr/bin/env python3
"""Hugging Face generate() reference for iris-generate (tests/hf/test_hf_generate.cpp).

Usage:  <venv>/bin/python tests/hf/make_generate_reference.py OUT_DIR   (venv from tools/setup-pyref.sh)

Writes, only when everything succeeded (generate.json last):
  OUT_DIR/<case>/config.json, model.safetensors   random-weight LlamaForCausalLM (make_reference.py's weights:
                                                  N(0, 0.2) matrices, 1 + N(0, 0.1) norms), fp32, eager attention
  OUT_DIR/generate.json  {"cases": {case: {"prompts": [[ids]], "completions": [[ids]], "min_margin": m}},
                          "max_new_tokens": N, "eos_token_id": 2,
                          "sampling": [{"temperature", "top_k", "top_p", "logits": [V], "probs": [V]}],
                          "versions": {...}}
Cases: make_reference.py's three configs (GQA 4 query heads over 2 KV heads; tied embeddings; Llama 3 rope
scaling), each with prompts of lengths 1, 5, 13 and 22 (random ids), completed one at a time by
model.generate(do_sample=False, max_new_tokens=40, eos_token_id=2): the completion is the generated ids after
the prompt, the EOS included when generation stopped there. min_margin is the smallest gap between the
largest and second-largest logit over all greedy steps; it must exceed MIN_MARGIN, so a 1e-5 difference
between two fp32 implementations cannot flip an argmax (otherwise change the seed).
Sampling: fixed logits vectors through HF's TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper in
generate()'s order (each only when it changes anything, as GenerationMixin._get_logits_warper adds them),
then softmax, in float64 so the C++ side is compared with HF's semantics at 1e-6.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as ref  # noqa: E402
import transformers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

CASES = [  # name, config overrides, seed
    ("untied", dict(), 2001),
    ("tied", dict(tie_word_embeddings=True), 2002),
    ("llama3_rope", dict(rope_theta=500000.0, rope_scaling=ref.LLAMA3_SCALING), 2003),
]
PROMPT_LENGTHS = [1, 5, 13, 22]
MAX_NEW_TOKENS = 40
EOS = 2
MIN_MARGIN = 1e-3
SAMPLING = [  # temperature, top_k, top_p
    (0.7, 0, 1.0), (1.0, 10, 1.0), (1.0, 0, 0.9), (0.8, 20, 0.8), (1.3, 5, 0.5), (0.5, 50, 0.95), (1.0, 1, 1.0),
]


def build_model(case_dir, overrides, seed):
    cfg = dict(ref.BASE, **overrides)
    model = LlamaForCausalLM(LlamaConfig(attn_implementation="eager", **cfg)).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(seed)
    ref.init_weights(model, gen)
    os.makedirs(case_dir, exist_ok=True)
    model.save_pretrained(case_dir, safe_serialization=True, max_shard_size="10GB")
    return model, gen


def greedy_case(model, gen, V):
    prompts, completions, margins = [], [], []
    for T in PROMPT_LENGTHS:
        ids = torch.randint(3, V, (1, T), generator=gen, dtype=torch.int64)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=MAX_NEW_TOKENS, eos_token_id=EOS, pad_token_id=0,
                                 output_scores=True, return_dict_in_generate=True)
        for step in out.scores:
            top2 = torch.topk(step[0].double(), 2).values
            margins.append((top2[0] - top2[1]).item())
        prompts.append(ids[0].tolist())
        completions.append(out.sequences[0, T:].tolist())
    ref.check(max(len(c) for c in completions) >= 32, f"no completion reached 32 tokens: {completions}")
    ref.check(min(margins) > MIN_MARGIN, f"a greedy step has top-2 margin {min(margins)} <= {MIN_MARGIN}")
    return {"prompts": prompts, "completions": completions, "min_margin": min(margins)}


def sampling_cases(V):
    gen = torch.Generator().manual_seed(2100)
    cases = []
    for t, k, p in SAMPLING:
        logits = (torch.randn((1, V), generator=gen, dtype=torch.float64) * 2.0).to(torch.float32)
        warpers = LogitsProcessorList()
        if t != 1.0:
            warpers.append(TemperatureLogitsWarper(t))
        if k != 0:
            warpers.append(TopKLogitsWarper(top_k=k))
        if p < 1.0:
            warpers.append(TopPLogitsWarper(top_p=p))
        scores = warpers(torch.zeros((1, 1), dtype=torch.int64), logits.double())
        probs = torch.softmax(scores, dim=-1)[0]
        cases.append({"temperature": t, "top_k": k, "top_p": p, "logits": logits[0].tolist(),
                      "probs": probs.tolist()})
    return cases


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[1]
    index = os.path.join(out_dir, "generate.json")
    if os.path.exists(index):
        os.remove(index)
    torch.manual_seed(0)
    result = {"cases": {}, "max_new_tokens": MAX_NEW_TOKENS, "eos_token_id": EOS,
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    for name, overrides, seed in CASES:
        model, gen = build_model(os.path.join(out_dir, name), overrides, seed)
        result["cases"][name] = greedy_case(model, gen, ref.BASE["vocab_size"])
        c = result["cases"][name]
        print(f"{name}: completions of {[len(x) for x in c['completions']]} tokens, min margin {c['min_margin']:.3g}")
    result["sampling"] = sampling_cases(ref.BASE["vocab_size"])
    with open(index + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(index + ".tmp", index)
    print(f"make_generate_reference: wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
