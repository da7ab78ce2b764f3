"""Progress displays for ``mlgrade check`` and its ``--watch`` loop (CLI only: rich lives here).

On a terminal, one live status line: the code cell running (numbered as in the report, with
its first line), the time it has run and its limit; then "test k of n" while graders run. Off
a terminal (a log, CI, a pipe), a few plain lines instead: one per code cell, one when the
graders start. The pipeline only calls an observer; it never draws anything.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.markup import escape

from mlgrade.pipeline import Progress


def _first_line(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class PlainProgress:
    """Plain lines, for a stream that is not a terminal."""

    def __init__(self, stream: IO[str], label: str) -> None:
        self._stream, self._label = stream, label
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._graded = False

    def _line(self, text: str) -> None:
        with self._lock:
            self._stream.write(f"[{time.monotonic() - self._start:6.1f}s] {text}\n")
            self._stream.flush()

    def __call__(self, p: Progress) -> None:
        if p.stage == "execute" and p.cell:
            self._line(f"{self._label}: cell {p.cell}/{p.cells}: {_first_line(p.line)} "
                       f"(limit {p.timeout:.0f} s)")
        elif p.stage == "grade" and p.test == 1 and not self._graded:
            self._graded = True
            self._line(f"{self._label}: grading, {p.tests} test{'s' if p.tests != 1 else ''}")


class LiveProgress:
    """One status line on a terminal, redrawn as things change and every 0.2 s (elapsed)."""

    def __init__(self, console: Console, label: str) -> None:
        self._console, self._label = console, label
        self._text = "starting a kernel ..."
        self._since = time.monotonic()
        self._stop = threading.Event()

    def __call__(self, p: Progress) -> None:
        if p.stage == "execute" and p.cell:
            self._since = time.monotonic()
            self._text = (f"cell {p.cell}/{p.cells} [dim]{escape(_first_line(p.line, 30))}[/dim] "
                          f"{{elapsed}} of {p.timeout:.0f} s")
        elif p.stage == "execute":
            self._text = "starting a kernel ..."
        elif p.stage == "grade" and p.test:
            self._text = f"test {p.test} of {p.tests} [dim]{escape(_first_line(p.title, 30))}[/dim]"
        elif p.stage == "grade":
            self._text = "grading ..."

    def _render(self) -> str:
        elapsed = f"{time.monotonic() - self._since:.1f} s"
        return f"{escape(self._label)}: {self._text.replace('{elapsed}', elapsed)}"

    @contextlib.contextmanager
    def shown(self) -> Iterator[LiveProgress]:
        with self._console.status(self._render()) as status:
            def tick() -> None:
                while not self._stop.wait(0.2):
                    status.update(self._render())

            ticker = threading.Thread(target=tick, name="mlgrade-progress", daemon=True)
            ticker.start()
            try:
                yield self
            finally:
                self._stop.set()
                ticker.join()


def fingerprint(path: Path) -> tuple[int, int] | None:
    """What ``--watch`` compares: modification time and size (``None``: the file is gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def watch(path: Path, check_once: Callable[[], object], *, poll_s: float = 0.3, settle_s: float = 0.6,
          stop: threading.Event | None = None, said: Callable[[str], None] = print) -> None:
    """Check now, then again each time ``path`` is saved: a change counts once the file has
    stayed the same for ``settle_s`` (editors write in several steps). Returns when ``stop``
    is set, or quietly on Ctrl-C while it waits between checks (its documented way out);
    Ctrl-C during a check propagates (that check has shut its kernel down by then)."""
    stop = stop or threading.Event()
    seen = fingerprint(path)
    check_once()
    while True:
        try:
            said(f"watching {path} for changes (Ctrl-C to stop)")
            changed = _next_change(path, seen, stop, poll_s, settle_s)
        except KeyboardInterrupt:  # idle: no kernel runs, nothing was interrupted
            said("stopped watching")
            return
        if stop.is_set():
            return
        seen = changed
        said(f"{path} changed: checking again")
        check_once()


def _next_change(path: Path, seen: tuple[int, int] | None, stop: threading.Event, poll_s: float,
                 settle_s: float) -> tuple[int, int] | None:
    """The file's fingerprint once a save has settled (``None``: it was removed); returns
    at once when ``stop`` is set."""
    while not stop.wait(poll_s):
        now = fingerprint(path)
        if now == seen or now is None:
            continue
        settled_at = time.monotonic()
        while not stop.wait(poll_s):  # debounce: wait for the writes to stop
            latest = fingerprint(path)
            if latest != now:
                now, settled_at = latest, time.monotonic()
            elif time.monotonic() - settled_at >= settle_s:
                return now
    return None
