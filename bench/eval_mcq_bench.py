#!/usr/bin/env python3
"""MCQ items per second on the CPU: iris-eval mcq vs lm_eval --model hf (lm-evaluation-harness 0.4.3), the
same random ~93M Llama export (C 768, L 12, NH 12, NKV 4, F 2560, V 2048 = the bundled sentencepiece
tokenizer, fp32), the same items (the three sample files of data/sample/eval/, 34 items, 112 choices) and
task definitions (tests/eval/check_mcq.py's YAMLs), the same thread count, one after the other in this run.
Times exclude loading the model on both sides (Iris: summary.json "seconds"; lm_eval: simple_evaluate on an
already built HFLM). Also checks that both sides agree on acc / acc_norm, so the speed is of a correct run.

Usage: <venv>/bin/python bench/eval_mcq_bench.py BUILD_DIR [--threads 2] [--iris-batch 4 8] [--hf-batch 1 8]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "eval"))
import check_mcq  # noqa: E402
import eval_models  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer  # noqa: E402

CONFIG = dict(eval_models.BASE, hidden_size=768, intermediate_size=2560, num_hidden_layers=12, num_attention_heads=12,
              num_key_value_heads=4, head_dim=64, max_position_embeddings=1024)


def make_model(d):
    if os.path.exists(os.path.join(d, "config.json")):
        return
    model = LlamaForCausalLM(LlamaConfig(**CONFIG)).float().eval()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(4242)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02 if p.dim() == 2 else torch.ones(p.shape))
    model.save_pretrained(d, safe_serialization=True)
    LlamaTokenizer(vocab_file=eval_models.TOKENIZER, legacy=True).save_pretrained(d)
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters in {d}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iris-batch", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--hf-batch", type=int, nargs="+", default=[1, 8])
    a = ap.parse_args()
    work = os.path.join(a.build, "bench-eval")
    model_dir = os.path.join(work, "model")
    os.makedirs(work, exist_ok=True)
    make_model(model_dir)
    task_dir = os.path.join(work, "tasks")
    check_mcq.write_tasks(task_dir)
    items = {f: sum(1 for l in open(os.path.join(check_mcq.SAMPLES, f + ".jsonl")) if l.strip()) for f in check_mcq.FORMATS}
    n = sum(items.values())
    with open("/proc/cpuinfo") as f:
        cpu = next(l.split(":")[1].strip() for l in f if l.startswith("model name"))
    print(f"machine: {os.cpu_count()} cores, {cpu}; threads {a.threads}; {n} items over {check_mcq.FORMATS}")
    results, accs = {}, {}
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    for b in a.iris_batch:
        seconds = 0.0
        for fmt in check_mcq.FORMATS:
            out = os.path.join(work, f"iris.b{b}.{fmt}")
            subprocess.run([os.path.join(a.build, "bin", "iris-eval"), "mcq", "--hf", model_dir, "--format", fmt,
                            "--input", os.path.join(check_mcq.SAMPLES, fmt + ".jsonl"), "--output", out,
                            "--batch", str(b)], check=True, env=env, stdout=subprocess.DEVNULL)
            s = json.load(open(os.path.join(out, "summary.json")))
            seconds += s["seconds"]
            accs[("iris", fmt)] = (s["acc"], s["acc_norm"])
        results[f"iris --batch {b}"] = n / seconds
        print(f"iris-eval --batch {b}: {n} items in {seconds:.2f} s = {n / seconds:.2f} items/s", flush=True)
    torch.set_num_threads(a.threads)
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    tm = TaskManager(include_path=task_dir)
    for b in a.hf_batch:
        lm = HFLM(pretrained=model_dir, dtype="float32", use_fast_tokenizer=False, batch_size=b, device="cpu")
        t0 = time.perf_counter()
        out = simple_evaluate(model=lm, tasks=[f"iris_{f}" for f in check_mcq.FORMATS], num_fewshot=0,
                              task_manager=tm, log_samples=False)
        seconds = time.perf_counter() - t0
        for fmt in check_mcq.FORMATS:
            r = out["results"][f"iris_{fmt}"]
            accs[("hf", fmt)] = (r["acc,none"], r["acc_norm,none"])
        results[f"lm_eval --batch_size {b}"] = n / seconds
        print(f"lm_eval --model hf --batch_size {b}: {n} items in {seconds:.2f} s = {n / seconds:.2f} items/s", flush=True)
    agree = all(accs[("iris", f)] == accs[("hf", f)] for f in check_mcq.FORMATS)
    best_iris = max(v for k, v in results.items() if k.startswith("iris"))
    best_hf = max(v for k, v in results.items() if k.startswith("lm_eval"))
    print(f"acc/acc_norm identical on both sides: {agree}")
    print(f"ratio best Iris / best lm_eval: {best_iris / best_hf:.2f} (target >= 2)")
    json.dump({"items_per_second": results, "agree": agree}, open(os.path.join(work, "results.json"), "w"), indent=2)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
