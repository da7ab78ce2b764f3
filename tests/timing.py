"""Time limits in tests scale with how slow this machine is right now, never fixed seconds.

A limit written in a test (``scaled(8)``) is the time it needs on a quiet 2-core machine of this
project; :func:`slowness` measures how much slower the machine is at the moment the limit is
taken (another test run, a build, pytest-xdist's other workers) and the limit grows by that
factor. The measure is a fixed CPU-bound workload timed against its quiet time, together with
the load average per core, so a machine at load 9 gets limits several times longer instead of a
failure.
"""

from __future__ import annotations

import os
import time

# the workload's time on this project's 2-core machine when quiet (median of 3 runs)
QUIET_WORKLOAD_S = 0.03
MAX_FACTOR = 20.0


def _workload() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(400_000):
        total += i * i % 7
    return time.perf_counter() - start


def slowness() -> float:
    """How many times slower than quiet the machine is now (at least 1, at most 20)."""
    runs = sorted(_workload() for _ in range(3))
    cpu = runs[1] / QUIET_WORKLOAD_S
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(max(1.0, cpu, load), MAX_FACTOR)


def scaled(seconds: float) -> float:
    """``seconds`` on a quiet machine, stretched by how slow the machine is now."""
    return round(seconds * slowness(), 1)
