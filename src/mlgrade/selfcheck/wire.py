"""JSON lines over a pair of pipes: the one channel between a learner's kernel and its grader.

Reads go through raw file descriptors with a buffer kept in the object, so a read cut short by
a signal (the grader interrupting a learner call) loses nothing; writes are made with SIGINT
blocked, so an interrupt can never leave half a message in the pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

_CHUNK = 1 << 20


class ChannelClosed(EOFError):
    """The other side went away (its process ended or closed the pipe)."""


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Hold SIGINT back (it is delivered, as a KeyboardInterrupt, when this block ends)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not on this platform
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Channel:
    """Send and receive one JSON document per line."""

    def __init__(self, read_fd: int, write_fd: int, *, max_bytes: int | None = None,
                 loads: Callable[[bytes], Any] = json.loads) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.max_bytes = max_bytes  # the grader caps what the kernel may send in one message
        self.loads = loads  # the grader reads the kernel's messages strictly (learner data)
        self._buffer = bytearray()
        self._eof = False

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, allow_nan=False).encode("utf-8") + b"\n"
        with sigint_blocked():
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self.write_fd, view)
                except BrokenPipeError:
                    raise ChannelClosed("the other side closed the channel") from None
                view = view[written:]

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next document, or ``None`` when ``timeout`` seconds pass without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            line = self._line()
            if line is not None:
                message = self.loads(line)
                if not isinstance(message, dict):
                    raise ChannelClosed("the channel carried something that is not a message")
                return message
            if self._eof:
                raise ChannelClosed("the other side closed the channel")
            if self.max_bytes is not None and len(self._buffer) > self.max_bytes:
                raise ChannelClosed(f"a message over the {self.max_bytes}-byte cap")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.read_fd, _CHUNK)
            if not chunk:
                self._eof = True
            self._buffer += chunk
