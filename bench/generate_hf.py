#!/usr/bin/env python3
"""transformers generate() side of bench/generate_bench.sh, and the model both sides run.

  generate_hf.py make  DIR                         writes a random ~125M Llama (fp32, safetensors) + prompts.jsonl
  generate_hf.py bench DIR --batch B --new N --threads T
      one generate(N) timed by a streamer: prefill = B·512 prompt tokens over the time to the first new token;
      decode = B·(N − 1) tokens over the time from the first to the last new token. Greedy, min_new_tokens = N (no early EOS), fp32, eager attention, KV cache on.
      Prints one line: "hf batch B: prefill P tokens/s, decode D tokens/s".
"""
import argparse
import json
import os
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
              num_key_value_heads=4, head_dim=64, max_position_embeddings=1024, rms_norm_eps=1e-5,
              rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, torch_dtype="float32")
PROMPT_LEN, PROMPTS = 512, 16


def make(out):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(attn_implementation="eager", **CONFIG)).to(torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02) if p.dim() == 2 else p.fill_(1.0)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="10GB")
    gen = torch.Generator().manual_seed(1)
    with open(os.path.join(out, "prompts.jsonl"), "w") as f:
        for i in range(PROMPTS):
            ids = torch.randint(3, CONFIG["vocab_size"], (PROMPT_LEN,), generator=gen).tolist()
            f.write(json.dumps({"id": f"p{i}", "prompt_ids": ids}) + "\n")
    n = sum(p.numel() for p in model.parameters())
    print(f"model: {n / 1e6:.1f}M parameters, {PROMPTS} prompts of {PROMPT_LEN} tokens in {out}")


def bench(out, batch, new, threads):
    torch.set_num_threads(threads)
    model = LlamaForCausalLM.from_pretrained(out, attn_implementation="eager", torch_dtype=torch.float32).eval()
    rows = [json.loads(l)["prompt_ids"] for l in open(os.path.join(out, "prompts.jsonl"))][:batch]
    ids = torch.tensor(rows, dtype=torch.int64)

    class Clock:  # a generate() streamer: put() gets the prompt first, then each step's new tokens
        def __init__(self):
            self.times = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    def run(n):
        clock = Clock()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                           min_new_tokens=n, pad_token_id=0, streamer=clock)
        return t0, clock.times

    run(2)  # warm-up
    t0, times = run(new)
    # times[0]: the prompt handed over; times[1]: the first new token (prefill done); times[-1]: the last.
    assert len(times) == new + 1, len(times)
    prefill = batch * ids.shape[1] / (times[1] - t0)
    decode = batch * (new - 1) / (times[-1] - times[1])
    print(f"hf batch {batch}: prefill {prefill:.1f} tokens/s, decode {decode:.1f} tokens/s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["make", "bench"])
    ap.add_argument("dir")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    make(a.dir) if a.mode == "make" else bench(a.dir, a.batch, a.new, a.threads)


if __name__ == "__main__":
    sys.exit(main())
