"""Let the graders' pytest session run in a thread while only the main thread drives the kernel.

Starting pytest (configuration, collection, importing the graders) takes a few hundred
milliseconds; doing it while the kernel boots and the learner's notebook runs removes that from
every check. jupyter_client's sockets belong to the thread that made them, so grader requests
are queued here and executed by the main thread, which serves them once the notebook has run.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from nbformat import NotebookNode

from mlgrade.kernel import CellRun, KernelSession, StdinAnswer

# Answers the kernel's ``input()`` during one request: prompt text -> reply (None: EOF).


@dataclass
class _Request:
    cell: NotebookNode | None  # None: a fresh session (restart, replay the notebook)
    timeout: float
    output_cap: int | None
    stdin: StdinAnswer | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: CellRun | None = None
    through: str | None = None  # a fresh session replays up to the cell containing this


class KernelDispatcher:
    """The kernel as graders see it: ``run`` from any thread, ``serve`` from the main thread."""

    def __init__(self, job_dir: object, grading_timeout: float) -> None:
        self.job_dir = job_dir
        self._grading_timeout = grading_timeout
        self._deadline: float | None = None  # starts when serving starts
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._closed = threading.Event()

    def remaining(self) -> float:
        """Seconds of grading time left (the clock starts once the notebook has run)."""
        if self._deadline is None:
            return self._grading_timeout
        return self._deadline - time.monotonic()

    def run(self, cell: NotebookNode | None, timeout: float, output_cap: int | None,
            stdin: StdinAnswer | None = None) -> CellRun:
        """Called by a grader (any thread): blocks until the main thread has run ``cell``.

        With ``stdin``, the kernel's stdin channel is open for this one request: each
        ``input(prompt)`` in the kernel reaches ``stdin(prompt)`` here, in the grader process,
        and its return value is what ``input`` returns (``None``: ``EOFError``)."""
        request = _Request(cell, timeout, output_cap, stdin)
        if self._closed.is_set():
            return CellRun("dead")
        self._requests.put(request)
        while not request.done.wait(0.1):
            if self._closed.is_set():
                break
        return request.result or CellRun("dead")

    def fresh_session(self, timeout: float, through: str | None = None) -> bool:
        """Called by a grader (any thread): restart the kernel and replay the notebook's
        completed cells (see :meth:`KernelSession.fresh_session`); whether that worked."""
        request = _Request(None, timeout, None, through=through)
        if self._closed.is_set():
            return False
        self._requests.put(request)
        while not request.done.wait(0.1):
            if self._closed.is_set():
                return False
        return request.result is not None and request.result.status == "ok"

    def serve(self, session: KernelSession, while_alive: threading.Thread) -> None:
        """Main thread: execute queued requests until ``while_alive`` (the graders) finishes."""
        self._deadline = time.monotonic() + self._grading_timeout
        # past the deadline the graders get no more answers (their calls fail as out of time);
        # a grader stuck outside the kernel is left to the caller's bounded join
        while while_alive.is_alive() and self.remaining() > 0:
            try:
                request = self._requests.get(timeout=0.02)
            except queue.Empty:
                continue
            try:
                if request.cell is None:
                    fresh = session.fresh_session(request.timeout, request.through)
                    request.result = CellRun("ok" if fresh else "dead")
                elif request.stdin is not None:
                    request.result = session.run(request.cell, -1, request.timeout,
                                                 store_history=False, output_cap=request.output_cap,
                                                 stdin=request.stdin)
                else:
                    request.result = session.run(request.cell, -1, request.timeout,
                                                 store_history=False, output_cap=request.output_cap)
            finally:
                request.done.set()

    def close(self) -> None:
        """No more kernel: pending and future requests come back as a dead kernel."""
        self._closed.set()
        while True:
            try:
                self._requests.get_nowait().done.set()
            except queue.Empty:
                return
