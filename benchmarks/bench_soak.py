"""Soak: N copies of a month's reference solution through ONE batch worker; does it leak?

    python benchmarks/bench_soak.py [-n 40] [--assignment month2] [--every 10]
                                    [--isolation auto] [--nofile N]

Under a low descriptor limit, either of (the limit is inherited by the worker and its kernels):

    bash -c 'ulimit -n 256 && python benchmarks/bench_soak.py -n 40'
    python benchmarks/bench_soak.py -n 40 --nofile 256

The submissions go through mlgrade's own batch path, as `mlgrade grade --workers 1` sends
them: discovery of a folder of copies, a gradebook, ``plan_batch`` and ``grade_batch`` with a
one-process ``LocalPool``. Each time the parent records a submission (the worker is then idle,
waiting for the next one) the worker's open descriptors (``/proc/PID/fd``), its resident
memory (VmRSS) and the submission's seconds are sampled; the first, every ``--every``-th and
the last are printed, then the change from submission 2 (the first after the one-off
imports) to the last. A leak shows as descriptors or memory growing with the count; the
seconds show whether later submissions slow down. The machine's load is printed before and
after: other work on the cores skews the seconds, not the descriptor counts.
Exit status 1 when a submission did not get full marks or the batch stopped.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    number: int  # 1-based, in the order recorded
    pid: int
    fds: int
    rss_mib: float
    seconds: float
    status: str
    full: bool


def worker_pid() -> int | None:
    """The batch worker: this process's only multiprocessing child while a batch runs."""
    children = multiprocessing.active_children()
    return children[0].pid if len(children) == 1 else None


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return -1.0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def nofile() -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    show = lambda v: "unlimited" if v == resource.RLIM_INFINITY else str(v)  # noqa: E731
    return f"RLIMIT_NOFILE soft {show(soft)}, hard {show(hard)}"


def row(s: Sample) -> str:
    return (f"{s.number:5d}  {s.pid:7d}  {s.fds:5d}  {s.rss_mib:8.1f}  {s.seconds:7.2f}  "
            f"{s.status}{'' if s.full else ' (not full marks)'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="copies of the solution to grade")
    parser.add_argument("--assignment", default="month2")
    parser.add_argument("--every", type=int, default=10, help="print every k-th submission")
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--nofile", type=int, default=0,
                        help="lower RLIMIT_NOFILE to this first (inherited by the worker)")
    args = parser.parse_args()
    if args.nofile:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, hard))

    from mlgrade.assignments import default_assignments_dir, get_assignment
    from mlgrade.batch.gradebook import Gradebook
    from mlgrade.batch.runner import BatchObserver, Graded, Tally, grade_batch, plan_batch
    from mlgrade.batch.submissions import discover
    from mlgrade.batch.workers import LocalPool, hard_timeout
    from mlgrade.config import resolve_settings
    from mlgrade.errors import MlgradeError

    assignment = get_assignment(default_assignments_dir(), args.assignment)
    settings = resolve_settings({"isolation": args.isolation}, assignment.limits)
    solution = REPO / "solutions" / f"{args.assignment}.ipynb"
    print(f"{args.n} copies of {solution.relative_to(REPO)} through one batch worker, "
          f"isolation {args.isolation}; {nofile()}")
    print(f"before: {load()}")
    samples: list[Sample] = []
    last = [time.monotonic()]

    class Sampler(BatchObserver):
        def recorded(self, item: Graded, tally: Tally) -> None:
            now = time.monotonic()
            pid = worker_pid() or -1
            samples.append(Sample(tally.done, pid, open_fds(pid), rss_mib(pid), now - last[0],
                                  item.status, item.status == "graded"
                                  and item.score == item.max_score > 0))
            last[0] = now
            if tally.done == 1 or tally.done % args.every == 0 or tally.done == args.n:
                print(row(samples[-1]), flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for i in range(args.n):
            shutil.copyfile(solution, folder / f"learner{i:03d}.ipynb")
        print("    #      pid    fds  RSS MiB  seconds  status")
        start = time.monotonic()
        stopped = None
        try:
            with Gradebook(Path(tmp) / "gradebook.db") as book:
                plan = plan_batch(discover(folder, assignment.name), book, assignment, settings)
                last[0] = time.monotonic()
                grade_batch(plan, assignment, settings, LocalPool(1, hard_timeout(settings)),
                            book, Sampler())
        except MlgradeError as exc:
            stopped = str(exc)
        wall = time.monotonic() - start
    print(f"after: {load()}")
    if stopped:
        print(f"the batch STOPPED after {len(samples)} of {args.n}: {stopped}")
    if len(samples) >= 3:
        second, end = samples[1], samples[-1]
        k = max(1, min(args.every, (len(samples) - 1) // 2))
        early = sum(s.seconds for s in samples[1:1 + k]) / k
        late = sum(s.seconds for s in samples[-k:]) / k
        print(f"descriptors: {second.fds} after submission 2, {end.fds} after {end.number} "
              f"({end.fds - second.fds:+d}); RSS {second.rss_mib:.1f} -> {end.rss_mib:.1f} MiB "
              f"({end.rss_mib - second.rss_mib:+.1f}); seconds per submission: "
              f"{early:.2f} (submissions 2-{1 + k}) vs {late:.2f} (last {k}), "
              f"ratio {late / early:.2f}")
        if len({s.pid for s in samples}) > 1:
            print("note: the worker was replaced during the batch (pids differ)")
    full = sum(s.full for s in samples)
    print(f"{full}/{args.n} at full marks in {wall:.1f} s")
    return 0 if full == args.n and not stopped else 1


if __name__ == "__main__":
    sys.exit(main())
