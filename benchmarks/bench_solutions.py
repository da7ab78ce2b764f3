"""Time to check every bundled reference solution, against plain nbclient execution of the same
notebook measured in the same run (machines here are noisy, so read the ratios).

    python benchmarks/bench_solutions.py [-n 1] [month1 month3 ...]

Targets (issue 3): each reference solution is checked in <= 20 s on the project's 2-core
machine, month 5 in <= 90 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = {"month5": 90.0}
PLAIN = """
import os, sys, shutil, tempfile, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
work = tempfile.mkdtemp()
data = os.path.join(sys.argv[2], "data")
if os.path.isdir(data):
    shutil.copytree(data, os.path.join(work, "data"))
NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=True,
               resources={"metadata": {"path": work}}).execute()
shutil.rmtree(work, ignore_errors=True)
"""


def run(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, check=False, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


def plain_seconds(name: str) -> float:
    """Wall seconds of plain nbclient execution of ``solutions/NAME.ipynb`` (a fresh Python,
    one unsandboxed kernel, the assignment's data copied): the floor any grading run pays."""
    return run([sys.executable, "-c", PLAIN, str(REPO / "solutions" / f"{name}.ipynb"),
                str(REPO / "assignments" / name)])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1, help="runs of each (median reported)")
    parser.add_argument("assignments", nargs="*")
    args = parser.parse_args()
    names = args.assignments or sorted(p.stem for p in (REPO / "solutions").glob("*.ipynb"))
    print(f"{'assignment':<11} {'plain exec':>10} {'check':>8} {'ratio':>6} {'score':>9} {'target':>7}")
    for name in names:
        notebook = REPO / "solutions" / f"{name}.ipynb"
        plain, check, score = [], [], "?"
        for _ in range(args.n):
            plain.append(plain_seconds(name))
            elapsed, stdout = run([sys.executable, "-m", "mlgrade", "check", name, str(notebook),
                                   "--format", "json"])
            check.append(elapsed)
            try:
                doc = json.loads(stdout)
                score = f"{doc['score']:g}/{doc['max_score']:g}"
            except (ValueError, KeyError):
                score = "failed"
        p, c = statistics.median(plain), statistics.median(check)
        target = TARGET_S.get(name, 20.0)
        flag = "ok" if c <= target else "SLOW"
        print(f"{name:<11} {p:>9.1f}s {c:>7.1f}s {c / p:>5.2f}x {score:>9} {target:>5.0f}s {flag}")


if __name__ == "__main__":
    main()
