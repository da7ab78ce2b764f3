"""Waiting for killed processes to be gone, patiently: our children reaped, strays confirmed.

After SIGKILL a process still has to exit (free its memory, close its files) and, if it is our
child, be reaped. On an idle machine that takes milliseconds; on a loaded one (other gradings,
a test run, swapping) it can take seconds. So every wait here

- scales with the machine's load (:func:`patience`), never a fixed tiny window;
- polls at least :data:`MIN_POLLS` times, so a grader that was itself starved of CPU while
  the clock ran still looks more than once before it judges;
- starts its clock again whenever something changed (some processes went);
- keeps waiting :data:`DYING_FACTOR` times as long (at most :data:`DYING_CAP_S`) while what
  is left is visibly dying (SIGKILL pending, or exiting).

Only what is still there after all of that *survived SIGKILL*; callers quarantine on that alone.
A child that has not exited by then is parked and reaped later (:func:`reap_child`), never left
a zombie for the rest of a long-lived process.

Standard library only: the in-notebook check imports this inside the learner's kernel.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

BASE_WAIT_S = 3.0  # how long an idle machine gets
MAX_SCALE = 20.0  # the most the load may stretch a wait
DYING_FACTOR = 4.0  # longer, while every process left has SIGKILL pending or is exiting ...
DYING_CAP_S = 120.0  # ... but never longer than this in all (a frozen task never exits)
MIN_POLLS = 10
_FIRST_SLEEP_S, _MAX_SLEEP_S = 0.002, 0.2
_SIGKILL_BIT = 1 << (signal.SIGKILL - 1) if hasattr(signal, "SIGKILL") else 0

T = TypeVar("T")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_factor() -> float:
    """How much slower than idle the machine may be now: runnable tasks per core, at least 1."""
    try:
        one_minute = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 1.0
    return min(max(1.0, one_minute / _cores()), MAX_SCALE)


def patience(base_s: float = BASE_WAIT_S) -> float:
    """``base_s`` stretched by the machine's load."""
    return base_s * load_factor()


def dying(pid: int) -> bool:
    """Whether ``pid`` is on its way out: SIGKILL pending for it, or already exiting (Linux's
    ``/proc``; elsewhere, False)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "State" and value.split()[:1] in (["Z"], ["X"]):
            return True
        if key in ("SigPnd", "ShdPnd"):
            with contextlib.suppress(ValueError):
                if int(value.strip(), 16) & _SIGKILL_BIT:
                    return True
    return False


def wait_for(check: Callable[[], T], done: Callable[[T], bool], *, base_s: float = BASE_WAIT_S,
             retry: Callable[[T], None] | None = None,
             still_dying: Callable[[T], bool] | None = None) -> T:
    """Call ``check()`` until ``done`` holds for its result, and return that last result.

    Between calls: ``retry(result)`` (e.g. SIGKILL again) and a sleep growing from 2 ms to
    0.2 s (back to 2 ms when the result changed). It gives up once at least
    :data:`MIN_POLLS` calls were made *and* ``patience(base_s)`` passed since the result last
    changed (:data:`DYING_FACTOR` times that, up to :data:`DYING_CAP_S`, while
    ``still_dying(result)`` holds)."""
    changed = time.monotonic()
    sleep = _FIRST_SLEEP_S
    polls = 0
    last: T | None = None
    while True:
        result = check()
        polls += 1
        if done(result):
            return result
        now = time.monotonic()
        if polls > 1 and result != last:
            changed, polls, sleep = now, 1, _FIRST_SLEEP_S  # progress: the window starts again
        last = result
        if polls >= MIN_POLLS and now - changed > patience(base_s):
            if still_dying is None or not still_dying(result):
                return result
            if now - changed > min(DYING_FACTOR * patience(base_s), DYING_CAP_S):
                return result
        if retry is not None:
            retry(result)
        time.sleep(sleep)
        sleep = min(sleep * 2, _MAX_SLEEP_S)


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL each of ``pids``; one that is gone (or not ours) is skipped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def all_dying(pids: Iterable[int]) -> bool:
    return all(dying(pid) for pid in pids)


_parked: list[subprocess.Popen[bytes]] = []  # children killed but not yet exited
_parked_lock = threading.Lock()


def _reap_parked() -> None:
    with _parked_lock:
        _parked[:] = [p for p in _parked if p.poll() is None]


def reap_child(process: subprocess.Popen[bytes], base_s: float = BASE_WAIT_S) -> bool:
    """SIGKILL our child ``process`` (if it still runs) and reap it, patiently; True once it
    has exited. One that has not exited in time is kept and reaped by a later call, so no
    zombie stays attached to a long-lived process (a batch worker, ``check --watch``)."""
    _reap_parked()
    if process.poll() is not None:
        return True

    def kill(_: object) -> None:
        with contextlib.suppress(OSError):
            process.kill()

    kill(None)
    code = wait_for(process.poll, lambda c: c is not None, base_s=base_s, retry=kill,
                    still_dying=lambda _: dying(process.pid))
    if code is None:
        with _parked_lock:
            _parked.append(process)
        return False
    return True


def parked() -> int:
    """Children killed but not yet reaped (after :func:`reap_child` gave up on them)."""
    _reap_parked()
    with _parked_lock:
        return len(_parked)
