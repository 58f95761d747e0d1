#!/usr/bin/env python3
"""GPT-2-small-sized inference in PyTorch: the reference for bench_gpt2 (same shape, same measurements).

The model is tests/pytorch/qkv_gpt.py's Gpt2 (GPT-2's layout: Conv1D projections, tanh GELU, tied head)
at GPT-2 small's shape, random weights. prompt: one forward pass over --prompt tokens under no_grad,
tokens/s; generate: --tokens greedy tokens after a 16-token prompt with a key/value cache, new tokens/s
(the prompt's pass included). Medians of --repeats.

    /usr/bin/python3 tests/bench/bench_gpt2_torch.py [--threads N] [--prompt T] [--tokens N] [--repeats R]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # PyTorch's best setting on 2 cores (see bench_train_torch.py)

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "pytorch"))
from bench_train_torch import blas_thread_setter  # noqa: E402
from qkv_gpt import Gpt2  # noqa: E402


def generate(model, prompt, steps):
    caches = [dict() for _ in model.h]
    logits = model(prompt, caches, 0)
    pos, out = prompt.shape[1], []
    for _ in range(steps):
        nxt = torch.argmax(logits[:, -1], dim=-1, keepdim=True)
        out.append(nxt)
        logits = model(nxt, caches, pos)
        pos += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    setter = blas_thread_setter()
    if setter:
        setter(a.threads)
    torch.manual_seed(1)
    model = Gpt2(50257, 1024, 768, 12, 12)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    model.eval()
    g = torch.Generator().manual_seed(2)
    long_prompt = torch.randint(50257, (1, a.prompt), generator=g)
    short_prompt = torch.randint(50257, (1, 16), generator=g)
    prompt_tps, gen_tps = [], []
    with torch.no_grad():
        model(long_prompt)  # warm-up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            model(long_prompt)
            prompt_tps.append(a.prompt / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            generate(model, short_prompt, a.tokens)
            gen_tps.append(a.tokens / (time.perf_counter() - t0))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"PyTorch {torch.__version__} GPT-2 small shape ({params:.1f} M parameters), {a.threads} thread(s): prompt of "
          f"{a.prompt} tokens {statistics.median(prompt_tps):.1f} tokens/s, {a.tokens} generated "
          f"{statistics.median(gen_tps):.1f} tokens/s (medians of {a.repeats})")
    print(f"result prompt_tps={statistics.median(prompt_tps):.3f} gen_tps={statistics.median(gen_tps):.3f}")


if __name__ == "__main__":
    main()
