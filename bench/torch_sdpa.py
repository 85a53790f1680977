# PyTorch's scaled_dot_product_attention timed at the shapes iris-attention-bench times (bench/attention_bench.cu),
# with the same causal FLOP count (4·B·NH·HS·T(T+1)/2 forward, 2.5× that backward) and the same line format, so
# tools/gpu-check.sh's attention section prints the three kernels side by side. bf16, CUDA events, median.
# GQA: K and V are expanded to NH heads first (a view; SDPA's enable_gqa is newer than some PyTorch builds).
#   python3 bench/torch_sdpa.py --shapes "B,T,NH,NKV,HS;..." [--iters 10]     exit 77 without a CUDA device
import argparse, statistics, sys

import torch

p = argparse.ArgumentParser()
p.add_argument("--shapes", default="1,4096,32,8,64;1,4096,32,32,128")
p.add_argument("--iters", type=int, default=10)
args = p.parse_args()
if not torch.cuda.is_available():
    print("skip: torch sees no CUDA device")
    sys.exit(77)
if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
    print(f"skip: torch {torch.__version__} has no scaled_dot_product_attention")
    sys.exit(77)


def median_ms(fn, iters):
    fn()  # warm-up: kernel selection, allocator
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


for shape in args.shapes.split(";"):
    B, T, NH, NKV, HS = (int(x) for x in shape.split(","))
    g = torch.Generator(device="cuda").manual_seed(1)
    q = torch.randn(B, NH, T, HS, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
    k = torch.randn(B, NKV, T, HS, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
    v = torch.randn(B, NKV, T, HS, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
    dout = torch.randn(B, NH, T, HS, device="cuda", dtype=torch.bfloat16, generator=g)

    def forward():
        ke = k.repeat_interleave(NH // NKV, dim=1) if NKV != NH else k
        ve = v.repeat_interleave(NH // NKV, dim=1) if NKV != NH else v
        return torch.nn.functional.scaled_dot_product_attention(q, ke, ve, is_causal=True)

    flop = 4.0 * B * NH * HS * T * (T + 1) / 2
    print(f"{torch.cuda.get_device_name()}: PyTorch {torch.__version__} SDPA B={B} T={T} NH={NH} NKV={NKV} HS={HS}, "
          f"median of {args.iters} runs")
    with torch.no_grad():
        ms = median_ms(forward, args.iters)
    print(f"  {'forward, PyTorch SDPA':<34} {ms:9.3f} ms  {flop / (ms * 1e-3) / 1e12:7.1f} TFLOP/s")
    out = forward()
    # The backward alone: one graph per call (retain_graph), the forward outside the timed region.
    ms = median_ms(lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True), args.iters)
    print(f"  {'backward (dq, dk, dv), PyTorch SDPA':<34} {ms:9.3f} ms  {2.5 * flop / (ms * 1e-3) / 1e12:7.1f} TFLOP/s")
