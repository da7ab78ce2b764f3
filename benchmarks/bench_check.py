"""Grading overhead: `mlgrade check` of the month-2 reference solution against plain nbclient
execution of the same notebook, interleaved in the same run (machines here are noisy).

    python benchmarks/bench_check.py [-n 7] [--assignment month2] [--isolation auto]

Prints the median wall time of each, the overhead in seconds and the ratio.
Target (issue 2): overhead <= 0.8 s and <= 20 %.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PLAIN = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=600).execute()
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7)
    parser.add_argument("--assignment", default="month2")
    parser.add_argument("--isolation", default="auto")
    args = parser.parse_args()
    notebook = REPO / "solutions" / f"{args.assignment}.ipynb"
    check = [sys.executable, "-m", "mlgrade", "check", args.assignment, str(notebook),
             "--format", "json", "--isolation", args.isolation]
    plain = [sys.executable, "-c", PLAIN, str(notebook)]
    # warm-up: first runs pay for cold caches
    timed(check)
    timed(plain)
    checks, plains = [], []
    for _ in range(args.n):
        plains.append(timed(plain))
        checks.append(timed(check))
    c, p = statistics.median(checks), statistics.median(plains)
    print(f"notebook: {notebook.relative_to(REPO)}   runs: {args.n} each, interleaved")
    print(f"plain nbclient execution  median {p:6.2f} s   (min {min(plains):.2f}, max {max(plains):.2f})")
    print(f"mlgrade check (graded)    median {c:6.2f} s   (min {min(checks):.2f}, max {max(checks):.2f})")
    print(f"grading overhead          {c - p:+6.2f} s   ratio {c / p:.2f}x   ({(c / p - 1) * 100:+.0f} %)")


if __name__ == "__main__":
    main()
