"""The watchdog that sits outside nbclient: interrupt a run that overstays, then kill it.

When its time is up it sends SIGINT to the kernel's process group; if the kernel is still
busy after a grace period, SIGKILL. Used around every cell and every grader request.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import TracebackType

INTERRUPT_GRACE_S = 3.0


def signal_group(pgid: int | None, sig: int) -> None:
    """Send ``sig`` to a process group; a group that is gone (or was never known) is fine."""
    if pgid is not None and pgid > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


class Watchdog:
    """Arms on ``__enter__``: after ``timeout`` seconds SIGINT to ``pgid``, and SIGKILL
    ``grace`` seconds later; disarmed on ``__exit__``. :attr:`fired` says whether it struck."""

    def __init__(self, pgid: int | None, timeout: float, grace: float = INTERRUPT_GRACE_S) -> None:
        self._pgid, self._grace = pgid, grace
        self._fired = threading.Event()
        self._lock = threading.Lock()  # disarming and striking never interleave
        self._disarmed = False
        self._interrupt_timer = threading.Timer(max(timeout, 0.01), self._interrupt)
        self._interrupt_timer.daemon = True
        self._kill_timer: threading.Timer | None = None

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def _interrupt(self) -> None:
        with self._lock:
            if self._disarmed:
                return
            self._fired.set()
            signal_group(self._pgid, signal.SIGINT)
            self._kill_timer = threading.Timer(self._grace, self._kill)
            self._kill_timer.daemon = True
            self._kill_timer.start()

    def _kill(self) -> None:
        with self._lock:
            if not self._disarmed:
                signal_group(self._pgid, signal.SIGKILL)

    def __enter__(self) -> Watchdog:
        self._interrupt_timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._disarmed = True
        self._interrupt_timer.cancel()
        if self._kill_timer is not None:
            self._kill_timer.cancel()
