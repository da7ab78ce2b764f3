"""Batch grading throughput: N copies of a reference solution graded with ``--workers 1`` and
``--workers 2`` in the same run, a single ``mlgrade check`` of the same notebook for scale, and
plain nbclient execution of it (``bench_solutions.plain_seconds``: no grading, no sandbox), the
floor.

    python benchmarks/bench_batch.py [-n 20] [--assignment month3] [--workers 1,2]
                                     [--isolation auto] [--checks 3]

Prints submissions/minute for each worker count, the speed-up over one worker, the time per
submission with one worker against a single ``mlgrade check`` (median of ``--checks`` runs),
and seconds per submission for each worker count next to plain execution (median of
``--checks`` runs, interleaved with the batches). The machine's load average is printed before
and after: other work on the cores skews ratios.
Targets (issue 4): speed-up >= 1.7x on 2 cores; one-worker time per submission within 20 % of
a single ``mlgrade check``. Issue 17: with 2 workers, seconds per submission below plain
execution (the next submission's kernel starts while the previous one grades).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_solutions import plain_seconds  # noqa: E402  (the same PLAIN snippet, not a copy)


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return elapsed


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def stage_times(db: Path) -> tuple[float, float]:
    """Median per-submission total and notebook-execution seconds recorded in a gradebook."""
    with sqlite3.connect(db) as conn:
        results = [json.loads(r[0]) for r in conn.execute("SELECT result_json FROM submissions")]
    total = statistics.median(r["duration_s"] for r in results)
    execution = statistics.median(r["execution"]["duration_s"] for r in results)
    return total, execution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="copies of the solution to grade")
    default = "month3" if (REPO / "solutions" / "month3.ipynb").exists() else "month2"
    parser.add_argument("--assignment", default=default)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--checks", type=int, default=3, help="single `mlgrade check` runs")
    args = parser.parse_args()
    solution = REPO / "solutions" / f"{args.assignment}.ipynb"
    counts = [int(w) for w in args.workers.split(",")]
    mlgrade = [sys.executable, "-m", "mlgrade"]
    print(f"assignment {args.assignment}, {args.n} copies of {solution.relative_to(REPO)}, "
          f"isolation {args.isolation}")
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for i in range(args.n):
            shutil.copyfile(solution, folder / f"learner{i:03d}.ipynb")
        check = [*mlgrade, "check", args.assignment, str(solution), "--format", "json",
                 "--isolation", args.isolation]
        timed(check)  # warm-up: cold caches
        checks, plains = [], []
        walls: dict[int, float] = {}
        for w in counts:
            checks.append(timed(check))  # interleaved with the batches: same machine state
            plains.append(plain_seconds(args.assignment))
            db = Path(tmp) / f"workers{w}.db"
            walls[w] = timed([*mlgrade, "grade", args.assignment, str(folder), "--gradebook",
                              str(db), "--workers", str(w), "--isolation", args.isolation])
            total, execution = stage_times(db)
            print(f"--workers {w}: {walls[w]:7.1f} s wall, {60 * args.n / walls[w]:6.1f} "
                  f"submissions/min; per submission (median, in the worker): {total:.2f} s, of "
                  f"which notebook execution {execution:.2f} s")
        for _ in range(max(0, args.checks - len(checks))):
            checks.append(timed(check))
            plains.append(plain_seconds(args.assignment))
    single = statistics.median(checks)
    plain = statistics.median(plains)
    print(f"single `mlgrade check`: median {single:.2f} s over {len(checks)} runs "
          f"(min {min(checks):.2f}, max {max(checks):.2f})")
    print(f"plain nbclient execution: median {plain:.2f} s over {len(plains)} runs "
          f"(min {min(plains):.2f}, max {max(plains):.2f})")
    for w in counts:
        per = walls[w] / args.n
        print(f"--workers {w}: {per:.2f} s per submission vs plain execution {plain:.2f} s: "
              f"{per / plain:.2f}x")
    base = counts[0]
    for w in counts[1:]:
        print(f"speed-up --workers {w} over --workers {base}: {walls[base] / walls[w]:.2f}x")
    if 1 in walls:
        per = walls[1] / args.n
        print(f"--workers 1 per submission: {per:.2f} s vs single check {single:.2f} s: "
              f"{(per / single - 1) * 100:+.0f} %")
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
