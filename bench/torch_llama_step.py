#!/usr/bin/env python3
"""PyTorch side of iris-bench: training steps of transformers' LlamaForCausalLM on random tokens, the
same shapes as the Iris run (micro-batch x seq, grad-accum micro-batches per AdamW step). Prints one
JSON line (the last line of stdout); exit status 3 with {"oom": true} when the step does not fit.

CUDA: fp32 weights held by the optimizer (Iris's fp32 master weights) and bf16 autocast for the forward
and backward (Iris computes in bf16), SDPA attention, AdamW(fused=True), torch.compile of the model.
Each of those falls back when this torch lacks it (torch 1.13 has neither SDPA nor torch.compile) and
the JSON says which ran. CPU: fp32 throughout (the smoke test's configuration).
Usage: torch_llama_step.py --config config.json --seq 4096 --micro-batch 1 --grad-accum 8 --steps 10
         --warmup-steps 3 --device cuda [--grad-checkpointing off|on] [--compile auto|off] [--threads N]"""
import argparse, contextlib, json, math, sys, time

import torch
import transformers

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--seq", type=int, required=True)
p.add_argument("--micro-batch", type=int, default=1)
p.add_argument("--grad-accum", type=int, default=1)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup-steps", type=int, default=3)
p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
p.add_argument("--grad-checkpointing", choices=["off", "on"], default="off")
p.add_argument("--compile", choices=["auto", "off"], default="auto")
p.add_argument("--threads", type=int, default=0)
a = p.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)
device = torch.device(a.device)
cuda = a.device == "cuda"
notes = []
result = {"side": "pytorch", "torch": torch.__version__, "transformers": transformers.__version__,
          "device": torch.cuda.get_device_name() if cuda else "cpu",
          "grad_checkpointing": a.grad_checkpointing == "on"}


def is_oom(e):
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom_type is not None and isinstance(e, oom_type)) or "out of memory" in str(e).lower()


def emit(extra, status=0):
    result.update(extra)
    result["notes"] = notes
    print(json.dumps(result), flush=True)
    sys.exit(status)


raw = {k: v for k, v in json.load(open(a.config)).items() if k not in ("architectures", "torch_dtype")}
cfg = transformers.LlamaConfig(**raw)


def build_model():
    """The model with the fastest attention this torch/transformers pair accepts."""
    for attn in ("sdpa", "eager"):
        try:
            m = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation=attn)
            result["attention"] = attn
            return m
        except (ImportError, ValueError) as e:  # transformers refuses SDPA on torch < 2.1.1
            notes.append(f"{attn} attention unavailable: {str(e).splitlines()[0][:160]}")
    raise SystemExit("no attention implementation available")


torch.manual_seed(0)
# Initialise on the GPU where torch can (>= 2.0): a 7B fp32 init on the CPU takes minutes.
on_device = torch.device(device) if cuda and hasattr(torch.device, "__enter__") else contextlib.nullcontext()
with on_device:
    model = build_model().float()  # fp32 master weights; bf16 only inside autocast
model = model.to(device)
model.config.use_cache = False
if a.grad_checkpointing == "on":
    try:  # non-reentrant checkpointing is the one torch.compile can trace (transformers >= 4.35 takes the kwargs)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    except TypeError:
        model.gradient_checkpointing_enable()
params = sum(t.numel() for t in model.parameters())

try:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    result["optimizer"] = "AdamW(fused=True)"
except (TypeError, RuntimeError, ValueError) as e:  # fused AdamW: torch >= 2.0 on CUDA, >= 2.4 on CPU
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, foreach=True)
    result["optimizer"] = "AdamW(foreach=True)"
    notes.append(f"fused AdamW unavailable: {str(e).splitlines()[0][:160]}")

step_model = model
result["compiled"] = False
if a.compile == "off":
    notes.append("torch.compile off (--compile off)")
elif not hasattr(torch, "compile"):
    notes.append(f"torch.compile not in torch {torch.__version__}: eager")
else:
    step_model = torch.compile(model)
    result["compiled"] = True

B, T, G = a.micro_batch, a.seq, a.grad_accum
gen = torch.Generator(device="cpu").manual_seed(1)
tokens = torch.randint(0, cfg.vocab_size, (G, B, T + 1), generator=gen).to(device)
autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
result["precision"] = "fp32 weights + bf16 autocast" if cuda else "fp32"


def train_step(m):
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for g in range(G):
        inputs, targets = tokens[g, :, :-1], tokens[g, :, 1:]
        with autocast:
            logits = m(input_ids=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), targets.reshape(-1)) / G
        loss.backward()
        total += loss.detach()
    opt.step()
    return float(total)


if cuda:
    torch.cuda.reset_peak_memory_stats()
times, losses = [], []
try:
    for s in range(a.warmup_steps + a.steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        try:
            loss = train_step(step_model)
        except Exception as e:  # a compile failure on the first step: say so and run eagerly
            if s > 0 or step_model is model or is_oom(e):
                raise
            notes.append(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:160]}): eager")
            result["compiled"], step_model = False, model
            loss = train_step(step_model)
        if cuda:
            torch.cuda.synchronize()
        losses.append(loss)
        if s >= a.warmup_steps:
            times.append(time.perf_counter() - t0)
except Exception as e:
    if is_oom(e):
        emit({"oom": True, "error": str(e).splitlines()[0][:300]}, status=3)
    raise

if cuda:
    peak = torch.cuda.max_memory_allocated() / 2**20
else:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
mean_time = sum(times) / len(times)
emit({"oom": False, "params": params, "micro_batch": B, "seq": T, "grad_accum": G,
      "steps": a.steps, "warmup_steps": a.warmup_steps, "step_time_s": mean_time,
      "tokens_per_s": B * T * G / mean_time, "peak_memory_mib": peak,
      "peak_memory_kind": "torch.cuda.max_memory_allocated" if cuda else "peak RSS",
      "threads": torch.get_num_threads(), "losses": [l if math.isfinite(l) else None for l in losses]})
