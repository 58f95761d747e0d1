#!/usr/bin/env python3
"""The reference for bench_text: nanoGPT's CPU "baby" recipe in PyTorch, on the same model, data and schedule.

Everything qkv's `TextTrainer` does with `TextTrainConfig::baby()`, written again in PyTorch so that
the two can be compared on one machine in one sitting (compare_text_torch.py runs them alternately):

- data: the file's bytes are cut at 90% (moved back to the start of a UTF-8 character); the
  character tokenizer is every distinct character of the whole text, sorted by code point; the
  validation loss is the mean over K fixed windows of T = 64 tokens, K = min((n-1)//T, eval_tokens//T)
  starting at k*(n-1-T)//(K-1) — the windows TextTrainer::evaluate() documents — in chunks of 32;
- model: qkv's GPT (bench_train_torch.py's): token and learned position embeddings, 4 pre-LN blocks
  with one fused QKV Linear and an output Linear (biases), causal softmax attention, an MLP of 4·C
  with exact-erf GELU, a final LayerNorm and an LM head without bias; weights N(0, 0.02), biases 0;
- recipe: batch 12 random windows of 64, 2000 steps, AdamW (betas 0.9/0.99, eps 1e-8, weight decay
  0.1 on every parameter, as qkv's AdamW), lr (s+1)/100·1e-3 for 100 warm-up steps then a cosine
  to 1e-4 at step 2000, gradients clipped to norm 1, no dropout.

The random streams differ (PyTorch draws its own initial weights and batches), so one seed of each is
not the same run; compare the spread over seeds.

    /usr/bin/python3 tests/bench/bench_text_torch.py [--text FILE] [--seed N] [--threads N] [--steps N] [--time N]

Prints progress, then `result val_loss=... ms_step_mean=... ms_step_median=... steps=... threads=... seed=...`
(without val_loss when --time N times N steps only).
"""
import argparse
import math
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # PyTorch's best setting on 2 cores (see bench_train_torch.py)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_torch import GPT, blas_thread_setter  # noqa: E402  (the same model as bench_train)

# TextTrainConfig::baby()
LAYERS, HEADS, DIM, CONTEXT, BATCH, STEPS = 4, 4, 128, 64, 12, 2000
LR, MIN_LR, WARMUP, WD, BETA2, CLIP, EVAL_EVERY, EVAL_TOKENS = 1e-3, 1e-4, 100, 0.1, 0.99, 1.0, 250, 16384


def load(path):
    """Training and validation ids, and the vocabulary size, as tokenize_text() makes them."""
    data = open(path, "rb").read()
    cut = len(data) * 9 // 10
    for _ in range(3):
        if cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
    train_text, val_text = data[:cut].decode("utf-8"), data[cut:].decode("utf-8")
    chars = sorted(set(data.decode("utf-8")))
    index = {c: i for i, c in enumerate(chars)}
    encode = lambda s: torch.tensor([index[c] for c in s], dtype=torch.long)  # noqa: E731
    return encode(train_text), encode(val_text), len(chars)


def lr_at(step, total):
    """optim::WarmupCosineLR: linear warm-up to LR over WARMUP steps, then a cosine to MIN_LR at `total`."""
    warmup = min(WARMUP, total)
    if step < warmup:
        return LR * (step + 1) / warmup
    if step >= total:
        return MIN_LR
    progress = (step - warmup) / (total - warmup)
    return MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model, val):
    model.eval()
    n, T = len(val), CONTEXT
    K = min((n - 1) // T, max(1, EVAL_TOKENS // T))
    starts = [0 if K == 1 else k * (n - 1 - T) // (K - 1) for k in range(K)]
    total = 0.0
    for first in range(0, K, 32):
        chunk = starts[first:first + 32]
        x = torch.stack([val[s:s + T] for s in chunk])
        y = torch.stack([val[s + 1:s + 1 + T] for s in chunk])
        logits = model(x)
        total += F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1)).item() * len(chunk)
    model.train()
    return total / K


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", default="data/corpus.txt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="threads (default: PyTorch's choice)")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--time", type=int, default=0, help="only time this many steps (after 5 warm-up steps)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
        setter = blas_thread_setter()
        if setter:
            setter(a.threads)
    torch.manual_seed(a.seed)
    train, val, vocab = load(a.text)
    model = GPT(vocab, DIM, HEADS, LAYERS, CONTEXT)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, BETA2), eps=1e-8, weight_decay=WD)
    gen = torch.Generator().manual_seed(a.seed + 7)
    print(f"PyTorch {torch.__version__}: baby recipe on {a.text} ({len(train)} training tokens, V {vocab}), "
          f"seed {a.seed}, {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}", flush=True)
    step_no = 0

    def step():
        nonlocal step_no
        for group in opt.param_groups:
            group["lr"] = lr_at(step_no, a.steps)
        starts = torch.randint(len(train) - CONTEXT, (BATCH,), generator=gen)
        x = torch.stack([train[s:s + CONTEXT] for s in starts])
        y = torch.stack([train[s + 1:s + 1 + CONTEXT] for s in starts])
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        step_no += 1
        return loss.item()

    ms = []

    def timed_step():
        t0 = time.perf_counter()
        loss = step()
        ms.append((time.perf_counter() - t0) * 1e3)
        return loss

    if a.time:
        for _ in range(5):
            step()
        for _ in range(a.time):
            timed_step()
        print(f"result ms_step_mean={statistics.mean(ms):.3f} ms_step_median={statistics.median(ms):.3f} "
              f"steps={a.time} threads={torch.get_num_threads()} seed={a.seed}")
        return
    total = 0.0
    while step_no < a.steps:
        total += timed_step()
        if step_no % EVAL_EVERY == 0 or step_no == a.steps:
            print(f"step {step_no:>5}  train {total / EVAL_EVERY:.4f}  val {evaluate(model, val):.4f}", flush=True)
            total = 0.0
    print(f"result val_loss={evaluate(model, val):.4f} ms_step_mean={statistics.mean(ms):.3f} "
          f"ms_step_median={statistics.median(ms):.3f} steps={step_no} threads={torch.get_num_threads()} seed={a.seed}")


if __name__ == "__main__":
    main()
