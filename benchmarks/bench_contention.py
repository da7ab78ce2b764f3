"""Contention: several mlgrade processes on one busy machine each finish correctly (issue 21).

    python benchmarks/bench_contention.py [-n 8] [--assignment month2] [--load 8]
                                          [--workers 2] [--check month3]

Starts CPU burners so that, with the runs' own processes, about ``--load`` are busy; then,
all at once: two ``mlgrade grade`` batches (``-n`` copies of the reference solution each,
``--workers`` each, their own gradebooks) and one ``mlgrade check`` of ``--check``'s reference
solution. Each must exit 0, every submission must be recorded once at full marks, the check
must give full marks, and afterwards no process runs under a sandbox uid and no uid lease is
held. Prints each run's wall seconds, the runnable tasks sampled while they ran, and the load
average before and after.
Exit status 1 when any of that does not hold.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def burn(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def sample_run_queue(started: dict[str, Any], queue: list[int]) -> None:
    """Every half second while any run is alive: the machine's runnable tasks right now (the
    load average's one-minute mean lags a run of a minute or two)."""
    while any(proc.poll() is None for _, proc in started.values()):
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith("procs_running"):
                    queue.append(int(line.split()[1]))
        time.sleep(0.5)


def lingering() -> list[str]:
    """Uid leases still held and processes still running under a leased sandbox uid (every
    uid mlgrade ever leased here has a lock file; only MLGRADE_UID_BASE's uids are looked at)."""
    import fcntl

    from mlgrade.sandbox.slots import UID_BASE, UID_STRIDE, UID_TRIES, lock_dir, pids_of_uid

    ours = range(UID_BASE, UID_BASE + UID_STRIDE * UID_TRIES)
    found = []
    for lock in sorted(lock_dir().glob("uid-*.lock")):
        uid = int(lock.stem.removeprefix("uid-"))
        if uid not in ours:
            continue
        with open(lock, "ab") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                found.append(f"lease {lock.name} still held")
        found += [f"pid {pid} (uid {uid})" for pid in pids_of_uid(uid)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=8, help="submissions in each batch")
    parser.add_argument("--assignment", default="month2")
    parser.add_argument("--check", default="month3", help="assignment checked alongside")
    parser.add_argument("--load", type=int, default=8, help="busy processes to aim for")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    mlgrade = [sys.executable, "-m", "mlgrade"]
    solution = REPO / "solutions" / f"{args.assignment}.ipynb"
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlgrade-contention-") as tmp:
        runs = {}
        for batch in ("a", "b"):
            folder = Path(tmp) / batch
            folder.mkdir()
            for k in range(args.n):
                shutil.copy(solution, folder / f"learner{k:03d}.ipynb")
            runs[f"batch {batch}"] = [*mlgrade, "grade", args.assignment, str(folder),
                                      "--workers", str(args.workers),
                                      "--gradebook", str(Path(tmp) / f"{batch}.db")]
        runs["check"] = [*mlgrade, "check", args.check,
                         str(REPO / "solutions" / f"{args.check}.ipynb"), "--format", "json"]
        stop = multiprocessing.Event()
        # the runs below add about 2 x workers + 1 busy processes of their own
        burners = [multiprocessing.Process(target=burn, args=(stop,), daemon=True)
                   for _ in range(max(0, args.load - 2 * args.workers - 1))]
        for b in burners:
            b.start()
        time.sleep(5)
        print(f"{len(burners)} CPU burners; before: {load()}")
        started = {name: (time.perf_counter(), subprocess.Popen(
            cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for name, cmd in runs.items()}
        queue: list[int] = []
        sampler = threading.Thread(target=sample_run_queue, args=(started, queue), daemon=True)
        sampler.start()
        finished: dict[str, tuple[str, str, float]] = {}

        def wait(name: str, t0: float, proc: subprocess.Popen[str]) -> None:
            out, err = proc.communicate()
            finished[name] = (out, err, time.perf_counter() - t0)

        waiters = [threading.Thread(target=wait, args=(name, t0, proc))
                   for name, (t0, proc) in started.items()]
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join()
        for name, (_, proc) in started.items():
            out, err, seconds = finished[name]
            last = err.strip().splitlines()[-1][:100] if err.strip() else ""
            print(f"{name:<8} exit {proc.returncode}  {seconds:6.1f} s  {last}")
            if proc.returncode != 0:
                problems.append(f"{name} exited {proc.returncode}: {err.strip()[-300:]}")
            elif name == "check":
                doc = json.loads(out)
                if doc["score"] != doc["max_score"]:
                    problems.append(f"check scored {doc['score']}/{doc['max_score']}")
        stop.set()
        for b in burners:
            b.join()
        sampler.join()
        if queue:
            print(f"runnable tasks while the runs ran: mean {statistics.mean(queue):.1f}, "
                  f"max {max(queue)} ({len(queue)} samples, /proc/stat procs_running)")
        print(f"after: {load()}")
        for batch in ("a", "b"):
            with sqlite3.connect(Path(tmp) / f"{batch}.db") as conn:
                rows = [json.loads(r[0]) for r in conn.execute("SELECT result_json FROM submissions")]
            full = sum(1 for r in rows if r["score"] == r["max_score"])
            print(f"batch {batch}: {len(rows)} recorded, {full} at full marks")
            if len(rows) != args.n or full != args.n:
                problems.append(f"batch {batch}: {len(rows)} recorded, {full} at full marks "
                                f"(expected {args.n})")
    left = lingering()
    print(f"left behind: {', '.join(left) if left else 'nothing'}")
    problems += [f"left behind: {x}" for x in left]
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
