#!/usr/bin/env python3
"""qkv against PyTorch on GPT-2-small-sized inference: bench_gpt2 and bench_gpt2_torch.py, run alternately.

For each thread count, --runs rounds of (qkv, PyTorch), each program timing --repeats prompts of
--prompt tokens and --repeats generations of --tokens tokens (see bench_gpt2.cpp). Printed: the median
of the runs' medians, the range over runs, and qkv / PyTorch (above 1: qkv is faster).

    /usr/bin/python3 tests/bench/compare_gpt2_torch.py [--runs 3] [--threads 1 2] [--prompt 128] [--tokens 32]
        [--repeats 5] [--bench build/tests/bench/bench_gpt2] [--reference installed|tuned]
"""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_reference  # noqa: E402
from compare_text_torch import cell, run  # noqa: E402  (runs a benchmark, reads its result line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bench", default="build/tests/bench/bench_gpt2")
    torch_reference.add_option(ap)
    a = ap.parse_args()
    torch_env = torch_reference.environment(a.reference)
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    print(torch_reference.describe(torch_env))
    print(f"CPU: {cpu}; {a.runs} alternated runs per thread count; prompt {a.prompt} tokens, {a.tokens} generated")
    print(f"{'threads':>7} {'what':<9} {'qkv tokens/s':>24} {'PyTorch tokens/s':>24} {'qkv/PyTorch':>12}")
    for t in a.threads:
        flags = ["--threads", str(t), "--prompt", str(a.prompt), "--tokens", str(a.tokens), "--repeats", str(a.repeats)]
        q, p = [], []
        for _ in range(a.runs):
            q.append(run([a.bench] + flags))
            p.append(run([sys.executable, os.path.join(HERE, "bench_gpt2_torch.py")] + flags, torch_env))
        for key, what in (("prompt_tps", "prompt"), ("gen_tps", "generate")):
            qs, ps = [r[key] for r in q], [r[key] for r in p]
            print(f"{t:>7} {what:<9} {cell(qs, '{:.1f}'):>24} {cell(ps, '{:.1f}'):>24} "
                  f"{statistics.median(qs) / statistics.median(ps):>12.2f}", flush=True)


if __name__ == "__main__":
    main()
