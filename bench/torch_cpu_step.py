#!/usr/bin/env python3
"""The same training step as iris-cpu-step-bench in PyTorch on the CPU: transformers LlamaForCausalLM in fp32
(eager attention: Debian's torch 1.13 has no SDPA), cross-entropy, AdamW. Prints tokens/s.
Usage: torch_cpu_step.py --model configs/models/bench-10m.json --seq 256 --batch 8 --steps 10 --warmup 2 --threads N"""
import argparse, json, time

import torch
import transformers

p = argparse.ArgumentParser()
p.add_argument("--model", default="configs/models/bench-10m.json")
p.add_argument("--seq", type=int, default=256)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=torch.get_num_threads())
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
cfg = transformers.LlamaConfig(**{k: v for k, v in json.load(open(a.model)).items() if k != "architectures"})
cfg._attn_implementation = "eager"
model = transformers.LlamaForCausalLM(cfg).float()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
tokens = torch.randint(0, cfg.vocab_size, (a.batch, a.seq + 1))
inputs, targets = tokens[:, :-1], tokens[:, 1:]
timed = 0.0
for s in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    logits = model(input_ids=inputs).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), targets.reshape(-1))
    loss.backward()
    opt.step()
    dt = time.perf_counter() - t0
    if s >= a.warmup:
        timed += dt
n = a.batch * a.seq
params = sum(p.numel() for p in model.parameters())
print(f"pytorch model={a.model} params={params} B={a.batch} T={a.seq} threads={torch.get_num_threads()} "
      f"steps={a.steps}: {1e3 * timed / a.steps:.1f} ms/step, {n * a.steps / timed:.0f} tokens/s "
      f"(torch {torch.__version__}, transformers {transformers.__version__})")
