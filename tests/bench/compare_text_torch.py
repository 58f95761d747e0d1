#!/usr/bin/env python3
"""qkv against PyTorch on nanoGPT's CPU "baby" recipe: bench_text and bench_text_torch.py, run alternately.

Two questions, one sitting (a shared VM's speed drifts within minutes, so both programs are run in
turn — qkv, PyTorch, qkv, ... — and see the same drift):

1. Time per step, on 1 and 2 threads: --runs runs of each program timing --time-steps steps (after 5
   warm-up steps); the median of each run's median, the range over runs, and PyTorch / qkv.
2. Validation loss after the full recipe (2000 steps), for each of --seeds, on --loss-threads threads:
   the final loss of every run, and the mean and range over seeds of each program. The random
   streams differ between the programs, so seed 0 of qkv is not seed 0 of PyTorch: the question is
   whether the two sets of seeds agree within their spread.

    /usr/bin/python3 tests/bench/compare_text_torch.py [--text data/corpus.txt] [--runs 5] [--time-steps 30]
        [--seeds 0 1 2] [--threads 1 2] [--loss-threads 2] [--skip-timing] [--skip-loss]
        [--bench build/tests/bench/bench_text] [--reference installed|tuned]

It needs PyTorch for the Python that runs bench_text_torch.py (Debian: apt-get install python3-torch,
which is /usr/bin/python3's) and a built bench_text (cmake --build build --target bench_text).
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

RESULT = re.compile(r"^result (.*)$", re.M)


def run(cmd, env=None):
    """Run one benchmark (in `env`, default: ours); returns the key=value pairs of its result line."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"compare_text_torch: {' '.join(cmd)} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    m = RESULT.search(out.stdout)
    if not m:
        sys.exit(f"compare_text_torch: no result line in the output of {' '.join(cmd)}:\n{out.stdout}")
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def cell(values, fmt="{:.2f}"):
    """Median [min-max]."""
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", default="data/corpus.txt")
    ap.add_argument("--bench", default="build/tests/bench/bench_text", help="the bench_text executable")
    ap.add_argument("--runs", type=int, default=5, help="timing runs of each program per thread count")
    ap.add_argument("--time-steps", type=int, default=30, help="timed steps per timing run")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--loss-threads", type=int, default=2, help="threads of the full runs")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-loss", action="store_true")
    torch_reference.add_option(ap)
    a = ap.parse_args()
    if not os.access(a.bench, os.X_OK):
        sys.exit(f"compare_text_torch: {a.bench} is not an executable (cmake --build build --target bench_text)")
    ours = [a.bench, "--text", a.text]
    theirs = [sys.executable, os.path.join(HERE, "bench_text_torch.py"), "--text", a.text]
    torch_env = torch_reference.environment(a.reference)
    print(torch_reference.describe(torch_env))

    if not a.skip_timing:
        print(f"time per step of the baby recipe on {a.text}: median of each run's median over {a.time_steps} steps, "
              f"{a.runs} alternated runs (min-max over runs)")
        print(f"{'threads':>7} {'qkv ms/step':>24} {'PyTorch ms/step':>24} {'PyTorch/qkv':>12}")
        for t in a.threads:
            q, p = [], []
            for _ in range(a.runs):
                q.append(run(ours + ["--threads", str(t), "--time", str(a.time_steps)])["ms_step_median"])
                p.append(run(theirs + ["--threads", str(t), "--time", str(a.time_steps)], torch_env)["ms_step_median"])
            print(f"{t:>7} {cell(q):>24} {cell(p):>24} {statistics.median(p) / statistics.median(q):>11.2f}x", flush=True)
        print()

    if not a.skip_loss:
        print(f"validation loss after the full recipe on {a.text}, {a.loss_threads} thread(s), alternated runs")
        print(f"{'seed':>5} {'qkv loss':>10} {'qkv ms/step':>12} {'PyTorch loss':>13} {'PyTorch ms/step':>16}")
        ql, pl = [], []
        for s in a.seeds:
            q = run(ours + ["--threads", str(a.loss_threads), "--seed", str(s)])
            p = run(theirs + ["--threads", str(a.loss_threads), "--seed", str(s)], torch_env)
            ql.append(q["val_loss"])
            pl.append(p["val_loss"])
            print(f"{s:>5} {q['val_loss']:>10.4f} {q['ms_step_mean']:>12.2f} {p['val_loss']:>13.4f} {p['ms_step_mean']:>16.2f}",
                  flush=True)
        mq, mp = statistics.mean(ql), statistics.mean(pl)
        spread = max(max(ql) - min(ql), max(pl) - min(pl))
        print(f"mean  {mq:>10.4f} {'':>12} {mp:>13.4f}")
        print(f"range {max(ql) - min(ql):>10.4f} {'':>12} {max(pl) - min(pl):>13.4f}")
        verdict = "within" if abs(mq - mp) <= spread else "OUTSIDE"
        print(f"difference of the means {mq - mp:+.4f}: {verdict} the larger spread over seeds ({spread:.4f})")


if __name__ == "__main__":
    main()
