#!/usr/bin/env python3
"""qkv against PyTorch on this machine: bench_train and bench_train_torch.py, run alternately.

A shared VM's speed drifts by 10-25 % within minutes, so one run of each program, one after the
other, can put either ahead. This script runs them in turn, N times each (qkv, PyTorch, qkv, ...),
so that both see the same drift, and prints per model and thread count the median ms/step of each,
the spread of the runs, the ratio PyTorch / qkv of the medians (above 1: qkv is faster), and qkv's
fraction of the FLOP floor: the step's FLOPs at the peak of this CPU's cores (bench_train measures
one core's FMA peak in each run; the median of those is used) over qkv's median time.

    /usr/bin/python3 tests/bench/compare_torch.py [--runs N] [--steps N] [--only S|M|L|attn]
                                                  [--bench build/tests/bench/bench_train]
                                                  [--reference installed|tuned]

It needs PyTorch for the Python that runs bench_train_torch.py (Debian: apt-get install
python3-torch, which is /usr/bin/python3's) and a built bench_train (cmake --build build).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_reference  # noqa: E402

# model, threads, ms/step [, tokens/s, GFLOP/s: bench_train's further columns; PyTorch's has none]
ROW = re.compile(r"^(S|M|L|attn)\s+(\d+)\s+([0-9.]+)(?:\s+[0-9.]+\s+([0-9.]+))?")
PEAK = re.compile(r"^peak of one core: ([0-9.]+) GFLOP/s")


def run(cmd, env=None):
    """Run one benchmark program (in `env`, default: ours); returns {(model, threads): (ms, GFLOP/s)}
    from its table, and {"peak": GFLOP/s} when it printed its measured peak."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"compare_torch: {' '.join(cmd)} failed (exit {out.returncode}):\n{out.stderr}")
    rows = {}
    for line in out.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rows[(m.group(1), int(m.group(2)))] = (float(m.group(3)), float(m.group(4) or 0))
        p = PEAK.match(line)
        if p:
            rows["peak"] = float(p.group(1))
    if not rows:
        sys.exit(f"compare_torch: no result rows in the output of {' '.join(cmd)}:\n{out.stdout}")
    return rows


def cell(median, runs):
    """A median with the range of the runs it summarises."""
    return f"{median:8.2f} [{min(runs):.2f}-{max(runs):.2f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of each program (default 5)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    ap.add_argument("--only", choices=["S", "M", "L", "attn"], help="one model only")
    ap.add_argument("--bench", default="build/tests/bench/bench_train", help="the bench_train executable")
    torch_reference.add_option(ap)
    a = ap.parse_args()
    if a.runs < 1 or a.steps < 1:
        sys.exit("compare_torch: --runs and --steps must be at least 1")
    if not os.access(a.bench, os.X_OK):
        sys.exit(f"compare_torch: {a.bench} is not an executable (build first: cmake --build build)")
    extra = ["--steps", str(a.steps)] + (["--only", a.only] if a.only else [])
    ours = [a.bench] + extra
    theirs = [sys.executable, os.path.join(HERE, "bench_train_torch.py")] + extra

    torch_env = torch_reference.environment(a.reference)
    reference = torch_reference.describe(torch_env)
    qkv, torch, flops, peaks = {}, {}, {}, []
    for i in range(a.runs):
        for results, cmd, env in ((qkv, ours, None), (torch, theirs, torch_env)):
            for key, value in run(cmd, env).items():
                if key == "peak":
                    peaks.append(value)
                    continue
                ms, gflops = value
                results.setdefault(key, []).append(ms)
                if results is qkv:
                    flops[key] = gflops * ms * 1e6  # the step's FLOPs (the same in every run)
        print(f"run {i + 1}/{a.runs} done", file=sys.stderr)

    peak = statistics.median(peaks) if peaks else 0.0
    print(reference)
    print(f"median ms/step over {a.runs} alternated runs of {a.steps} steps (min-max in brackets)")
    if peak:
        print(f"peak of one core: {peak:.1f} GFLOP/s (median of the FMA probe of each qkv run, "
              f"{min(peaks):.1f}-{max(peaks):.1f})")
    print(f"{'model':<6} {'threads':>7} {'qkv':>22} {'PyTorch':>22} {'PyTorch/qkv':>12} {'qkv % floor':>12}")
    order = {"S": 0, "M": 1, "L": 2, "attn": 3}
    for key in sorted(qkv, key=lambda k: (order[k[0]], k[1])):
        if key not in torch:
            continue
        q, t = qkv[key], torch[key]
        mq, mt = statistics.median(q), statistics.median(t)
        # The FLOP floor: the step's FLOPs at the peak of `threads` cores, as a share of the time taken.
        floor = f"{100 * flops[key] / (peak * 1e9 * key[1]) / (mq / 1e3):>11.1f}%" if peak else f"{'-':>12}"
        print(f"{key[0]:<6} {key[1]:>7} {cell(mq, q):>22} {cell(mt, t):>22} {mt / mq:>11.2f}x {floor}")


if __name__ == "__main__":
    main()
