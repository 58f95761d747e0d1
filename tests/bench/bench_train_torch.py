#!/usr/bin/env python3
"""The reference for bench_train: the same GPT training step in PyTorch, timed the same way.

Run it on the machine you run bench_train on, so that the ratio qkv / PyTorch compares two programs
on one CPU (numbers measured on another machine say little). Debian ships PyTorch 1.13 for the
system Python: `apt-get install python3-torch`, then

    /usr/bin/python3 tests/bench/bench_train_torch.py [--steps N] [--only S|M|L|attn] [--threads N]

The model is the one bench_train measures: learned token and position embeddings, pre-LayerNorm
blocks with one fused QKV Linear (bias) and an output Linear (bias), causal softmax attention, an
MLP of 4·C with exact-erf GELU, a final LayerNorm, an LM head without bias; weights N(0, 0.02),
biases 0; cross-entropy loss; AdamW with PyTorch's defaults. One step = zero_grad, forward,
backward, optimizer step; the median over the timed steps is printed in ms.
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

# PyTorch's OpenMP threads spin while OpenBLAS's own threads multiply: on 2 cores the two pools then
# fight for the cores, and 2 threads ran slower than 1 (measured: M 229 ms/step against 117 with
# passive waiting). Passive waiting is PyTorch's best setting here, so it is the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the environment it reads at load time)
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {  # name: (vocab, d_model, heads, layers, T, batch), as in bench_train.cpp
    "S": (16, 64, 4, 2, 32, 32),
    "M": (64, 128, 4, 4, 64, 32),
    "L": (64, 256, 8, 4, 128, 16),
}


# The model itself is tests/pytorch/qkv_gpt.py's, the PyTorch side of qkv's bridge (the parity
# tests check it against qkv to 1e-10 in f64); here it gets the initialisation both frameworks use.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pytorch"))
from qkv_gpt import GPT as _GPT, Attention  # noqa: E402


class GPT(_GPT):
    """qkv_gpt.GPT with weights N(0, 0.02) and zero biases (qkv's nn::GPT initialisation)."""

    def __init__(self, vocab, dim, heads, layers, T):
        super().__init__(vocab, T, dim, heads, layers)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)


def blas_thread_setter():
    """openblas_set_num_threads of the OpenBLAS PyTorch loaded, or None.

    torch.set_num_threads sets PyTorch's own threads only: Debian's PyTorch does its matrix products
    in OpenBLAS, whose pthreads pool keeps using every core. Left alone, a "1-thread" PyTorch run
    uses both cores for its products (measured: L 335 ms/step that way, 430 ms truly on one).
    """
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "libopenblas" in line}
    for lib in sorted(libs):
        try:
            return ctypes.CDLL(lib).openblas_set_num_threads
        except (OSError, AttributeError):
            pass
    return None


def time_ms(step, warmup, steps):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench_gpt(name, steps):
    vocab, dim, heads, layers, T, batch = CONFIGS[name]
    torch.manual_seed(1)
    model = GPT(vocab, dim, heads, layers, T)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randint(vocab, (batch, T))
    y = torch.randint(vocab, (batch, T))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x).view(-1, vocab), y.view(-1)).backward()
        opt.step()

    return time_ms(step, 3, max(5, steps // 4) if name == "L" else steps)


def bench_attention(steps):
    torch.manual_seed(2)
    layer = Attention(128, 4)
    x = torch.randn(32, 64, 128, requires_grad=True)

    def step():
        layer.zero_grad()
        x.grad = None
        layer(x).sum().backward()

    return time_ms(step, 3, steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--only", choices=["S", "M", "L", "attn"])
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    a = ap.parse_args()
    set_blas_threads = blas_thread_setter()
    print(f"PyTorch {torch.__version__}, OpenBLAS threads {'set' if set_blas_threads else 'NOT set (not found)'}")
    print(f"{'model':<6} {'threads':>7} {'ms/step':>12}")
    for t in a.threads:
        torch.set_num_threads(t)
        if set_blas_threads:
            set_blas_threads(t)
        for name in CONFIGS:
            if a.only in (None, name):
                print(f"{name:<6} {t:>7} {bench_gpt(name, a.steps):>12.2f}", flush=True)
        if a.only in (None, "attn"):
            print(f"{'attn':<6} {t:>7} {bench_attention(a.steps):>12.2f}", flush=True)


if __name__ == "__main__":
    main()
