"""Per-submission cost of the namespaced sandbox against the process tier, same run.

    python benchmarks/bench_sandbox.py [--runs N] [--assignment month2] [--notebook PATH]

Grades the same notebook N times in each tier, interleaved (so machine load hits both
alike), and prints the median and mean wall time per submission, the namespaced tier's
overhead in seconds and as a ratio (issue 6 target: namespaced <= process + 0.3 s), and the
cost of a bare kernel start in each tier. Where the cgroup layer is available, each tier also
runs with it (``process+cgroup``, ``namespaced+cgroup``, same run, interleaved) and its cost is
printed. Nothing is mocked: real kernels, real bubblewrap, real cgroups.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mlgrade.assignments import default_assignments_dir, get_assignment
from mlgrade.config import resolve_settings
from mlgrade.kernel import KernelSession
from mlgrade.notebook import read_notebook
from mlgrade.pipeline import check_notebook, job_folder
from mlgrade.sandbox import NamespacedSandbox, ProcessSandbox, Sandbox
from mlgrade.sandbox.cgroup import cgroup_problem
from mlgrade.sandbox.namespaced import namespaced_problem

REPO = Path(__file__).resolve().parents[1]
TIERS: dict[str, Callable[[], Sandbox]] = {
    "process": lambda: ProcessSandbox(cgroup=False),
    "namespaced": lambda: NamespacedSandbox(cgroup=False),
}
if cgroup_problem() is None:
    TIERS.update({"process+cgroup": ProcessSandbox, "namespaced+cgroup": NamespacedSandbox})


def _summary(times: list[float]) -> str:
    return f"median {statistics.median(times):6.3f} s  mean {statistics.mean(times):6.3f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--assignment", default="month2")
    parser.add_argument("--notebook", type=Path, default=REPO / "solutions" / "month2.ipynb")
    args = parser.parse_args()
    problem = namespaced_problem()
    if problem:
        print(f"namespaced tier unavailable here ({problem}); nothing to compare", file=sys.stderr)
        return 2
    a = get_assignment(default_assignments_dir(), args.assignment)
    settings = resolve_settings({}, a.limits, environ={})
    grade: dict[str, list[float]] = {t: [] for t in TIERS}
    start_only: dict[str, list[float]] = {t: [] for t in TIERS}
    nb, _ = read_notebook(args.notebook)
    for i in range(args.runs + 1):  # the first round warms caches and is not counted
        for tier, cls in TIERS.items():
            t0 = time.perf_counter()
            result = check_notebook(args.notebook, a, settings, sandbox=cls()).result
            elapsed = time.perf_counter() - t0
            assert result.isolation == tier and result.full_marks, (tier, result.score)
            t0 = time.perf_counter()
            sandbox = cls()
            with job_folder(a) as (job, run), KernelSession(nb, job, run, settings, sandbox):
                pass  # start, canary, shutdown, reap, release
            started = time.perf_counter() - t0
            if i:
                grade[tier].append(elapsed)
                start_only[tier].append(started)
    print(f"{args.notebook.name} ({args.assignment}), {args.runs} runs per tier, interleaved")
    for tier in TIERS:
        print(f"  {tier:<17} grade: {_summary(grade[tier])}   kernel start+stop: "
              f"{_summary(start_only[tier])}")
    base, ns = statistics.median(grade["process"]), statistics.median(grade["namespaced"])
    print(f"namespaced - process per submission: {ns - base:+.3f} s (ratio {ns / base:.3f}); "
          f"target <= +0.300 s: {'met' if ns - base <= 0.3 else 'NOT met'}")
    if "process+cgroup" not in TIERS:
        print(f"cgroup layer unavailable here ({cgroup_problem()})")
    for tier in ("process", "namespaced"):
        if f"{tier}+cgroup" in TIERS:
            with_cg = statistics.median(grade[f"{tier}+cgroup"])
            bare = statistics.median(grade[tier])
            print(f"cgroup layer on {tier}: {with_cg - bare:+.3f} s per submission "
                  f"(ratio {with_cg / bare:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
