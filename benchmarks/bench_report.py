"""hil report at scale on this machine.

    python benchmarks/bench_report.py [--runs 1000] [--rigs 10] [--vectors 70] [--keep DIR]

Writes a synthetic results folder (1,000 runs of 70 vectors on 10 rigs by default: flaky
vectors, failures with messages and artifacts, measurements with limits) in a temporary
folder, runs ``hil report`` over it as a user would (a new process), and prints its wall and
CPU time, the machine's load, and the sizes of report.html and summary.json.  The goal is under
5 s and a report.html under 5 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hil.report import synthetic_results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--rigs", type=int, default=10)
    p.add_argument("--vectors", type=int, default=70)
    p.add_argument("--repeat", type=int, default=3, help="report this many times; best shown")
    p.add_argument("--keep", default=None, help="make the results here and keep them")
    args = p.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="hil-bench-report-"))
    t0 = time.perf_counter()
    synthetic_results(root, rigs=args.rigs, runs=args.runs, vectors=args.vectors)
    print(
        f"results: {args.runs} runs x {args.vectors} vectors on {args.rigs} rigs "
        f"({args.runs * args.vectors} records) made in {time.perf_counter() - t0:.1f} s: {root}"
    )
    hil = [sys.executable, "-m", "hil.cli", "report", "--results", str(root)]
    walls, cpus = [], []
    for _ in range(args.repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(hil, check=True, capture_output=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    html = (root / "report.html").stat().st_size
    js = (root / "summary.json").stat().st_size
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"hil report: wall {min(walls):.2f} s best of {args.repeat} "
        f"({', '.join(f'{w:.2f}' for w in walls)}), CPU {min(cpus):.2f} s; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"report.html {html / 1e6:.2f} MB, summary.json {js / 1e6:.2f} MB")
    goal = min(walls) < 5.0 and html < 5e6
    print(f"goal (< 5 s, < 5 MB): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
