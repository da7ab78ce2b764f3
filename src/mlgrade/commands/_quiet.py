"""File descriptors 1 and 2 on ``/dev/null`` while a notebook is graded (issue 21).

A library the graders call may write to the descriptors themselves, below Python's
``sys.stdout`` (libsvm's ``verbose=True``, a C++ core's warnings): on stdout that would break a
machine format, which must be exactly one document. While grading runs, descriptors 1 and 2
point at ``/dev/null``; Python's ``sys.stderr`` keeps reaching the real stderr through a
duplicate of its own, so the progress display is unchanged. Everything is restored before the
report is written.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator


def _real_fd(stream: object) -> int | None:
    try:
        return stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # CliRunner's streams have none
        return None


@contextlib.contextmanager
def native_output_silenced() -> Iterator[None]:
    """Descriptors 1 and 2 on /dev/null for the block; ``sys.stderr`` still shows (see module)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    stderr = sys.stderr
    replacement = None
    if _real_fd(stderr) == 2:  # Python-level stderr (progress, warnings) goes on as before
        replacement = io.TextIOWrapper(os.fdopen(os.dup(saved[2]), "wb", buffering=0),
                                       encoding=getattr(stderr, "encoding", None) or "utf-8",
                                       errors="backslashreplace", line_buffering=True,
                                       write_through=True)
        sys.stderr = replacement
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
        if replacement is not None:
            if sys.stderr is replacement:
                sys.stderr = stderr
            replacement.close()
