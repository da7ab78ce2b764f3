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

from mlgrade.kernel import CellRun, KernelSession


@dataclass
class _Request:
    cell: NotebookNode
    timeout: float
    output_cap: int | None
    done: threading.Event = field(default_factory=threading.Event)
    result: CellRun | None = None


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

    def run(self, cell: NotebookNode, timeout: float, output_cap: int | None) -> CellRun:
        """Called by a grader (any thread): blocks until the main thread has run ``cell``."""
        request = _Request(cell, timeout, output_cap)
        if self._closed.is_set():
            return CellRun("dead")
        self._requests.put(request)
        while not request.done.wait(0.1):
            if self._closed.is_set():
                break
        return request.result or CellRun("dead")

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
