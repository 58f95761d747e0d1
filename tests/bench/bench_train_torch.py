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
import math
import os
import statistics
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


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        H, D = self.heads, C // self.heads
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        p = F.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
        o = (p @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(o)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, dim, heads, layers, T):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(T, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, ids):
        T = ids.shape[1]
        h = self.tok(ids) + self.pos(torch.arange(T))
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln_f(h))


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
