"""Kernel side of ``mlgrade.check()``: serve the grader process's requests from the calling cell.

While a cell runs, the kernel's shell channel is busy, so the grader cannot send it execute
requests; instead the calling cell itself answers them, in the kernel's main thread, with the
harness the CLI's graders use (:func:`mlgrade.bridge.harness.answer`, the same answer
documents), sent back down a pipe. Everything is plain data; the verdicts are the grader's.

Interrupts: the grader stops a learner call that overruns by announcing it on the pipe, then
sending SIGINT. A KeyboardInterrupt with such a notice waiting becomes a timeout answer; one
without (the learner's own Interrupt button) ends the check and is raised as usual.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from mlgrade.reaping import reap_child
from mlgrade.selfcheck.wire import Channel, ChannelClosed, sigint_blocked

_HARNESS = Path(__file__).resolve().parents[1] / "bridge" / "harness.py"
HINT_VARIABLE = "MLGRADE_SELFCHECK_NOTEBOOK"  # tells a starting grader process the notebook's path


class SelfCheckError(RuntimeError):
    """The self-check could not run (one line, in mlgrade's words)."""


def fresh_harness() -> types.ModuleType:
    """A new copy of the bridge harness for one check, with builtins of its own (as the CLI
    installs it in a grading kernel): objects it keeps for graders die with the check."""
    module = types.ModuleType("_mlgrade_selfcheck_harness")
    module.__dict__["__builtins__"] = dict(vars(sys.modules["builtins"]))
    exec(compile(_HARNESS.read_text(encoding="utf-8"), "<mlgrade-harness>", "exec"), module.__dict__)
    return module


class Worker:
    """The grader process, kept for the kernel's session (started at ``import mlgrade`` in a
    notebook's kernel, else by the first check)."""

    def __init__(self, hint: str | None = None) -> None:
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        env = dict(os.environ)
        if hint:  # the notebook's path: its assignment's graders are loaded ahead
            env[HINT_VARIABLE] = hint
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlgrade.selfcheck.grader"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env,
            start_new_session=True,  # a Ctrl-C meant for the kernel's terminal is not its
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.channel = Channel(self.process.stdout.fileno(), self.process.stdin.fileno())
        self.served = False  # whether a check has run to its end here (the process is up)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            self.log.seek(0)
            return self.log.read().decode("utf-8", "replace")[-1500:]
        return ""

    def close(self) -> None:
        reap_child(self.process)  # patient on a busy machine; never left a zombie of the kernel
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.log.close()


def _notice_waiting(channel: Channel, backlog: collections.deque[dict[str, Any]]) -> bool:
    """Whether the grader announced an interrupt; other messages read meanwhile are kept."""
    found = False
    with sigint_blocked():
        while True:
            message = channel.receive(0.05)
            if message is None:
                return found
            if message.get("op") == "interrupting":
                found = True
            else:
                backlog.append(message)


@contextlib.contextmanager
def _stdin_over(channel: Channel, rid: int, backlog: collections.deque[dict[str, Any]],
                harness: types.ModuleType, enabled: bool) -> Iterator[None]:
    """For one request, ``input(prompt)`` (the learner's, and in grader-written code) asks the
    grader process over the pipe, as the CLI's kernel asks over Jupyter's stdin channel."""
    if not enabled:
        yield
        return

    def pipe_input(prompt: object = "") -> str:
        channel.send({"op": "input", "id": rid, "prompt": str(prompt)})
        while True:
            message = channel.receive(None)
            if message is None:
                continue
            if message.get("op") == "input_reply" and message.get("id") == rid:
                text = message.get("text")
                if not isinstance(text, str):
                    raise EOFError("no input")
                return text
            backlog.append(message)

    import builtins

    own = harness.__dict__["__builtins__"]
    saved = builtins.input, own.get("input")
    builtins.input = own["input"] = pipe_input
    try:
        yield
    finally:
        builtins.input, own["input"] = saved


def serve(worker: Worker, request: dict[str, Any],
          on_progress: Callable[[int, int, str], None] | None = None,
          on_status: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Send one check request and answer the grader until its final message, which is
    returned; ``on_status`` hears what the grader is doing ("loading graders") and
    ``on_progress`` "test k of n" as the graders start each test. A learner's own interrupt
    ends the grader process and is raised."""
    channel = worker.channel
    harness = fresh_harness()
    backlog: collections.deque[dict[str, Any]] = collections.deque()
    home = os.getcwd()
    computing: int | None = None
    try:
        channel.send(request)
        while True:
            try:
                if backlog:
                    message: dict[str, Any] | None = backlog.popleft()
                else:
                    message = channel.receive(0.5)
                if message is None:
                    if not worker.alive:
                        raise ChannelClosed("the grader process ended")
                    continue
                op = message.get("op")
                if op == "request":
                    computing = int(message["id"])
                    with _stdin_over(channel, computing, backlog, harness, bool(message.get("stdin"))):
                        answer = harness.answer(str(message["payload"]))
                    channel.send({"op": "answer", "id": computing, "answer": answer})
                    computing = None
                elif op == "ready":
                    # graders put files in the kernel's working folder and learner code reads
                    # relative paths: both use a private job folder, as in `mlgrade check`
                    os.chdir(str(message["job"]))
                elif op == "status" and on_status is not None:
                    on_status(str(message.get("text", "")))
                elif op == "progress" and on_progress is not None:
                    on_progress(int(message.get("test", 0)), int(message.get("tests", 0)),
                                str(message.get("title", "")))
                elif op in ("done", "error"):
                    worker.served = True
                    return message
            except KeyboardInterrupt:
                if not _notice_waiting(channel, backlog):
                    raise  # the learner's own interrupt
                if computing is not None:
                    channel.send({"op": "answer", "id": computing, "interrupted": True})
                    computing = None
    except ChannelClosed:
        detail = worker.log_tail().strip().splitlines()
        raise SelfCheckError("the grader process stopped unexpectedly"
                             + (f" ({detail[-1][:200]})" if detail else "")
                             + "; run the check again, or use `mlgrade check`.") from None
    finally:
        with contextlib.suppress(OSError):
            os.chdir(home)
