#!/usr/bin/env python3
"""Two builds of qkv against each other: their bench_train, run alternately, medians and ranges.

A change that should not alter speed (a restructuring, a refactor) is checked by timing the build
before it and the build after it in one sitting: A, B, A, B, ... so that both see the same drift of
a shared machine. For each model and thread count it prints the median ms/step of each build, the
range over runs, and B / A (below 1: B is faster).

    python3 tests/bench/compare_builds.py OLD/bench_train NEW/bench_train [--runs 5] [--steps 20]

Build the old one in a worktree, e.g.
    git worktree add /tmp/old <commit> && cmake -S /tmp/old -B /tmp/old/build -G Ninja \\
        -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/old/build --target bench_train
(older trees put bench_train in build/, newer ones in build/tests/bench/).
"""
import argparse
import re
import statistics
import subprocess
import sys

# A result row of bench_train: model, threads, ms/step, ... (older builds print fewer columns).
ROW = re.compile(r"^(S|M|L|attn)\s+(\d+)\s+([0-9.]+)", re.M)


def one_run(exe, steps):
    out = subprocess.run([exe, "--steps", str(steps)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_builds: {exe} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    rows = {(m.group(1), int(m.group(2))): float(m.group(3)) for m in ROW.finditer(out.stdout)}
    if not rows:
        sys.exit(f"compare_builds: no result rows in the output of {exe}:\n{out.stdout}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="bench_train of build A (e.g. the old one)")
    ap.add_argument("b", help="bench_train of build B (e.g. the new one)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each build (default 5)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    args = ap.parse_args()
    times = {args.a: {}, args.b: {}}
    for i in range(args.runs):
        for exe in (args.a, args.b):
            for key, ms in one_run(exe, args.steps).items():
                times[exe].setdefault(key, []).append(ms)
        print(f"run {i + 1}/{args.runs} done", file=sys.stderr, flush=True)
    print(f"median ms/step over {args.runs} alternated runs of {args.steps} steps [min-max]")
    print(f"{'model':6} {'threads':>7} {'A':>26} {'B':>26} {'B/A':>7}")
    for key in times[args.a]:
        if key not in times[args.b]:
            continue
        a, b = times[args.a][key], times[args.b][key]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{key[0]:6} {key[1]:>7} {ma:9.2f} [{min(a):7.2f}-{max(a):7.2f}] "
              f"{mb:9.2f} [{min(b):7.2f}-{max(b):7.2f}] {mb / ma:7.3f}")


if __name__ == "__main__":
    main()
