"""The grader process of ``mlgrade.check()``: ``python -m mlgrade.selfcheck.grader``.

Started by the learner's kernel with two pipes (its stdin and stdout). It runs the same pytest
grader session as ``mlgrade check`` (:func:`mlgrade.grading.runner.run_graders`), with the same
settings and seed, but its ``nb`` bridge sends each request down the pipe: the kernel, busy
running the calling cell, answers it in that cell (:mod:`mlgrade.selfcheck.serve`). Every
answer is read strictly here, as learner-controlled data; every comparison happens here; the
hidden graders are imported only here, never in the kernel.

A learner call that overruns its time is stopped with SIGINT to the kernel (announced on the
pipe first, so the kernel can tell it from the learner's own interrupt) and fails as a timeout.
The process stays up for the next check of the same kernel session and ends when the pipe does.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlgrade.bridge.client import LearnerFailure, Notebook, dead_failure, timeout_failure
from mlgrade.bridge.codec import DecodeError, strict_json
from mlgrade.selfcheck.serve import HINT_VARIABLE
from mlgrade.selfcheck.wire import Channel, ChannelClosed

# after an unanswered interrupt, ask again this often, this many times, then give up
REINTERRUPT_S = 1.0
MAX_INTERRUPTS = 5


class PipeTransport:
    """The bridge's transport when the kernel serves requests itself, over the pipe."""

    def __init__(self, channel: Channel, kernel_pid: int, job_dir: Path, grading_timeout: float) -> None:
        self._channel = channel
        self._pid = kernel_pid
        self.job_dir = job_dir
        self._deadline = time.monotonic() + grading_timeout
        self._next = 0
        self._broken: str | None = None
        # answers input() in the kernel during a request (Notebook.call_with_stdin): the
        # kernel sends each prompt down the pipe and waits for this process's reply
        self.stdin: Callable[[str], str | None] | None = None

    def remaining(self) -> float:
        return self._deadline - time.monotonic()

    def _interrupt(self, rid: int) -> None:
        # the notice goes first: the kernel reads it when the interrupt lands, and knows it
        # came from us (and not from the learner's own Interrupt button)
        self._channel.send({"op": "interrupting", "id": rid})
        if self._pid > 1 and self._pid == os.getppid():  # not once the kernel is gone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._pid, signal.SIGINT)

    def _input(self, prompt: object) -> str | None:
        """The reply to one ``input(prompt)`` (the prompt is learner-controlled text)."""
        if self.stdin is None or not isinstance(prompt, str):
            return None
        try:
            reply = self.stdin(prompt)
        except Exception:  # noqa: BLE001 - a grader bug must not leave the kernel waiting
            return None
        return reply if isinstance(reply, str) else None

    def exchange(self, payload: str, timeout: float, what: str) -> list[Any]:
        if self._broken is not None:
            raise LearnerFailure(self._broken)
        left = self.remaining()
        if left <= 0:
            raise LearnerFailure(f"grading ran out of time before checking {what}.")
        limit = min(timeout, left)
        self._next += 1
        rid = self._next
        interrupts = 0
        try:
            self._channel.send({"op": "request", "id": rid, "payload": payload,
                                "stdin": self.stdin is not None})
            wait_until = time.monotonic() + limit
            while True:
                message = self._channel.receive(max(0.0, wait_until - time.monotonic()))
                if message is None:
                    if interrupts >= MAX_INTERRUPTS:
                        self._broken = (f"your kernel did not stop when asked while checking {what}"
                                        " (does your code catch KeyboardInterrupt?); restart the "
                                        "kernel, then check again.")
                        raise LearnerFailure(self._broken)
                    self._interrupt(rid)
                    interrupts += 1
                    wait_until = time.monotonic() + REINTERRUPT_S
                    continue
                if message.get("op") == "input" and message.get("id") == rid:
                    self._channel.send({"op": "input_reply", "id": rid,
                                        "text": self._input(message.get("prompt"))})
                    continue
                if message.get("op") != "answer" or message.get("id") != rid:
                    continue  # a late answer to a request that was already given up on
                if interrupts or message.get("interrupted"):
                    raise timeout_failure(what, limit)  # an answer after an interrupt is late
                return [json.dumps(message.get("answer"), allow_nan=False)]
        except ChannelClosed:
            self._broken = f"your kernel stopped answering while checking {what}."
            raise dead_failure(what) from None


def _strict(max_bytes: int) -> Any:
    def loads(line: bytes) -> Any:
        try:
            return strict_json(line, max_bytes)
        except DecodeError as exc:
            raise ChannelClosed(f"an unreadable message from the kernel ({exc})") from None

    return loads


def check_once(channel: Channel, request: dict[str, Any]) -> None:
    """Grade the kernel's current state once and send the result (or one error line)."""
    from mlgrade import __version__
    from mlgrade.assignments import resolve_assignments_dir
    from mlgrade.config import resolve_settings
    from mlgrade.errors import MlgradeError
    from mlgrade.grading.runner import run_graders
    from mlgrade.jobfolder import job_folder
    from mlgrade.render.console import render_text
    from mlgrade.render.html import fragment
    from mlgrade.results import Execution
    from mlgrade.score import score
    from mlgrade.selfcheck.choose import choose_assignment, choose_questions

    start = time.perf_counter()
    channel.send({"op": "status", "text": "loading graders"})
    try:
        root = resolve_assignments_dir(Path(request["assignments"]) if request.get("assignments") else None)
        a = choose_assignment(root, request.get("assignment"), request.get("hint"),
                              set(request.get("names") or []))
        questions = choose_questions(a, request.get("questions"))
        settings = resolve_settings({"seed": request.get("seed")}, a.limits)
        with job_folder(a) as (job, _run):
            channel.send({"op": "ready", "job": str(job), "assignment": a.name})
            # the kernel is this process's parent: interrupts go there, never to a pid the
            # kernel (learner-controlled) could name
            transport = PipeTransport(channel, os.getppid(), job, settings.grading_timeout)
            bridge = Notebook(transport, settings.call_timeout, settings.max_result_bytes)
            def progress(k: int, n: int, title: str) -> None:
                channel.send({"op": "progress", "test": k, "tests": n, "title": title})

            graders = run_graders(a.graders, bridge, settings.seed, job, a.folder,
                                  questions=questions, progress=progress)
            which = "all questions" if questions is None else ", ".join(q.upper() for q in questions)
            label = (f"self-check of {which} in your running kernel; the official grade comes "
                     f"from a fresh sandboxed kernel: `mlgrade check {a.name}`")
            result = score(assignment=a, notebook=str(request.get("hint") or "(this notebook)"),
                           settings=settings, execution=Execution(cells_total=0, cells_run=0),
                           graders=graders, duration_s=time.perf_counter() - start,
                           isolation="self-check (your kernel)", mlgrade_version=__version__)
            channel.send({"op": "done", "result": result.to_dict(), "label": label,
                          "text": f"{label}\n\n{render_text(result)}", "html": fragment(result, label),
                          "grader_errors": list(graders.grader_errors)})
    except ChannelClosed:
        raise
    except MlgradeError as exc:
        channel.send({"op": "error", "message": str(exc)})
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line for the learner
        channel.send({"op": "error", "message": f"internal error in mlgrade ({type(exc).__name__}: "
                      f"{exc}). Please report it; `mlgrade check` still works."})


def warm_up(waiting: Callable[[], bool]) -> None:
    """Do now what checks need, while no check is ``waiting``: import pytest, NumPy, the
    grading plugin and the renderers, read the starters' names (to tell which assignment a
    notebook is), and collect the graders of the notebook's assignment when its path says which
    (their imports, e.g. scikit-learn, and pytest's plugins are then loaded). This process is
    started ahead of the first check (at ``import mlgrade`` in a notebook), so that check does
    not wait for this; one that comes sooner stops it (a check does what it needs itself).
    Whatever fails here is left for the check to report."""
    import importlib

    for name in ("numpy", "pytest", "mlgrade.grading", "mlgrade.grading.runner",
                 "mlgrade.jobfolder", "mlgrade.render.console", "mlgrade.render.html",
                 "mlgrade.score", "mlgrade.selfcheck.choose", "mlgrade.notebook"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001,S112 - the check imports it again and says what failed
            continue
    with contextlib.suppress(Exception):
        from mlgrade.assignments import list_assignments, resolve_assignments_dir
        from mlgrade.grading.runner import collect_graders
        from mlgrade.selfcheck.detect import starter_names

        every = list_assignments(resolve_assignments_dir(None))
        for assignment in every:
            if waiting():
                return
            starter_names(assignment)  # cached for the process's life
        hint = Path(os.environ.get(HINT_VARIABLE) or "").stem
        named = [a for a in every if a.name == hint]
        if not waiting():
            with tempfile.TemporaryDirectory() as empty:  # no tests: pytest's plugins at least
                collect_graders(named[0].graders if named else Path(empty))


def main() -> int:
    """Serve checks until the kernel closes the pipe."""
    # the protocol owns the original stdout; anything else printed (pytest, graders) goes to
    # stderr, which the kernel keeps in a file for error reports
    proto_out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    # the kernel's Ctrl-C is its own business; this process ends when the pipe closes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Channel(0, proto_out, max_bytes=512 * 1024 * 1024, loads=_strict(512 * 1024 * 1024))
    warm_up(lambda: bool(select.select([0], [], [], 0)[0]))
    while True:
        try:
            message = channel.receive()
            if message is None:
                continue
            if message.get("op") == "check":
                check_once(channel, message)
            elif message.get("op") == "quit":
                return 0
        except ChannelClosed:
            return 0


if __name__ == "__main__":
    sys.exit(main())
