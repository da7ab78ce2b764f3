"""A live kernel for one submission: start, run cells under a watchdog, always shut down.

Three parts: :mod:`mlgrade.kernel_launch` starts a kernel through the sandbox,
:mod:`mlgrade.watchdog` interrupts (then kills) a run that overstays, and
:class:`KernelSession` here owns the lifecycle (start, canary, restart, fresh session,
shutdown) and runs cells with nbclient. Output is capped per cell and per notebook as it
arrives (:mod:`mlgrade.kernel_output`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from mlgrade.config import Settings
from mlgrade.errors import CanaryFailed, KernelStartError
from mlgrade.kernel_launch import LaunchedKernel, launch_kernel
from mlgrade.kernel_output import CappedClient
from mlgrade.sandbox import Sandbox
from mlgrade.sandbox.canary import Canary
from mlgrade.watchdog import INTERRUPT_GRACE_S, Watchdog, signal_group


@dataclass
class CellRun:
    """How one execution request ended: ok, error (raised), timeout, or dead (kernel gone)."""

    status: str
    outputs: list[NotebookNode] = field(default_factory=list)
    duration_s: float = 0.0


class KernelSession:
    """One kernel, started in ``job_dir`` through ``sandbox``. Use as a context manager."""

    def __init__(self, nb: NotebookNode, job_dir: Path, run_dir: Path, settings: Settings,
                 sandbox: Sandbox) -> None:
        self.nb = nb
        self.job_dir = job_dir
        self.run_dir = run_dir
        self.settings = settings
        self.sandbox = sandbox
        self._stack: contextlib.ExitStack | None = None
        self._client: CappedClient | None = None
        self._pgid: int | None = None
        self.starts = 0
        self.completed: list[NotebookNode] = []  # notebook cells that ran to their end

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> KernelSession:
        try:
            self.start()
        except BaseException:  # a failed start still gives back the slot's uid and cgroup
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.shutdown()
        finally:
            release = getattr(self.sandbox, "release", None)
            if release is not None:
                release()

    def start(self, launched: LaunchedKernel | None = None) -> None:
        """Start a kernel (the session's next) and, where the tier has one, run its canary.
        ``launched``: a kernel already started for this session's folders and sandbox
        (:mod:`mlgrade.prestart`) is taken over instead."""
        if launched is not None:
            self.starts += 1
        else:
            first = self.starts == 0
            try:
                launched = self._launch()
            except KernelStartError as exc:
                # the first start failing stops a whole batch: if it only timed out (a busy
                # machine), it gets one more try. A restart's failure is the learner's files'
                # doing (see restart) and fails closed at once.
                if not (exc.slow and first):
                    raise
                self._reap()
                launched = self._launch()
        self._stack, self._client, self._pgid = launched.stack, launched.client, launched.pgid
        if launched.canary is not None:
            self._check_canary(launched.canary)

    def _launch(self) -> LaunchedKernel:
        number, self.starts = self.starts, self.starts + 1
        return launch_kernel(self.nb, self.job_dir, self.run_dir, self.settings, self.sandbox,
                             number)

    def attach(self, nb: NotebookNode) -> None:
        """The notebook to run, for a session started before it was known."""
        self.nb = nb
        if self._client is not None:
            self._client.nb = nb

    def _check_canary(self, canary: Canary) -> None:
        """Before any learner code: the sandbox must give what its tier promises."""
        cell = new_code_cell(canary.source())
        outcome = self.run(cell, -1, self.settings.startup_timeout, store_history=False)
        problems = canary.problems(outcome.outputs, outcome.status)
        if problems:
            self.shutdown()
            raise CanaryFailed(
                f"the {self.sandbox.tier} sandbox failed its self-check "
                f"({'; '.join(problems)[:300]}); "
                "nothing was graded. Fix the machine (see docs/security.md) or choose a weaker "
                "tier explicitly with --isolation."
            )

    def shutdown(self) -> None:
        """Stop the kernel and every process left in its process group. Idempotent."""
        stack, self._stack, self._client = self._stack, None, None
        try:
            if stack is not None:
                stack.close()
        finally:
            self._killpg(signal.SIGKILL)
            self._reap()

    def _reap(self) -> None:
        """Whatever left the process group (setsid, double fork): the sandbox finds it by uid
        or token, and raises if it will not die (the slot is quarantined)."""
        reap = getattr(self.sandbox, "reap", None)
        if reap is not None:
            reap()

    def restart(self) -> None:
        """A fresh kernel after the learner's code killed or hung the last one.

        The first start proved the machine works; if a restart fails (the learner's files in
        the job folder can break a kernel's start or its canary, e.g. an IPython config or
        start-up file under ``IPYTHONDIR``), the session stays dead and the rest fails closed,
        instead of an environment error that would stop a whole batch. A process that
        survives the reaper still raises."""
        self.shutdown()
        try:
            self.start()
        except (KernelStartError, CanaryFailed):
            self.shutdown()

    def fresh_session(self, timeout: float, through: str | None = None) -> bool:
        """A new kernel in which the notebook cells that ran to their end are replayed quietly
        (on copies: the recorded outputs stay), so graders can load in a new session what was
        saved in the last one. With ``through``, only up to the last such cell whose source
        contains it (e.g. ``"def load_model"``). False if the kernel is dead afterwards or a
        replayed cell timed out, all within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        cells = list(self.completed)
        marked = [i for i, c in enumerate(cells) if through and through in c.source]
        if marked:
            cells = cells[: marked[-1] + 1]
        self.restart()
        for done in cells:
            left = deadline - time.monotonic()
            if left <= 0 or not self.alive:
                return False
            replay = self.run(copy.deepcopy(done), -1, min(self.settings.cell_timeout, left))
            if replay.status in ("timeout", "dead"):
                return False
        return self.alive

    # -- signals ---------------------------------------------------------------------------
    def _killpg(self, sig: int) -> None:
        signal_group(self._pgid, sig)

    @property
    def alive(self) -> bool:
        client = self._client
        if client is None or client.km is None:
            return False
        try:
            process = getattr(client.km.provisioner, "process", None)  # LocalProvisioner's Popen
            return bool(process is not None and process.poll() is None)
        except Exception:
            return False

    @property
    def output_truncated(self) -> bool:
        return bool(self._client is not None and self._client.truncated)

    # -- execution -------------------------------------------------------------------------
    def run(self, cell: NotebookNode, index: int, timeout: float, *,
            store_history: bool = True, output_cap: int | None = None,
            stdin: StdinAnswer | None = None) -> CellRun:
        """Execute ``cell``; on timeout interrupt, then kill after a grace period.

        With ``stdin``, the kernel's stdin channel is open for this one execution and each
        ``input()`` in it is answered with ``stdin(prompt)`` (None: EOFError in the kernel).
        Otherwise ``allow_stdin`` stays off and ``input()`` raises in the kernel.
        """
        client = self._client
        if client is None or not self.alive:
            return CellRun("dead")
        if stdin is not None:
            with _stdin_answered(client, stdin):
                return self.run(cell, index, timeout, store_history=store_history,
                                output_cap=output_cap)
        client.cap_override = output_cap
        client.start_cell(index)
        start = time.perf_counter()
        # nbclient stores the executed cell at nb.cells[index]: for a hidden cell (index -1)
        # that would overwrite the notebook's last cell, so put it back afterwards (a notebook
        # without cells gets a stand-in for that time)
        stand_in = index < 0 and not self.nb.cells
        if stand_in:
            self.nb.cells.append(new_code_cell(""))
        last = self.nb.cells[-1] if index < 0 else None
        try:
            with Watchdog(self._pgid, timeout) as watchdog:
                status = self._execute(client, cell, index, store_history, watchdog)
        finally:
            client.cap_override = None
            client.finish_streams()
            if stand_in:
                self.nb.cells.clear()
            elif last is not None:
                self.nb.cells[-1] = last
        if index >= 0 and status in ("ok", "error"):
            self.completed.append(cell)
        return CellRun(status, list(cell.get("outputs", [])), time.perf_counter() - start)

    def _execute(self, client: CappedClient, cell: NotebookNode, index: int,
                 store_history: bool, watchdog: Watchdog) -> str:
        """nbclient runs the cell; the outcome is ok, error, timeout (the watchdog struck) or
        dead."""
        try:
            client.execute_cell(cell, index, store_history=store_history)
        except (DeadKernelError, CellTimeoutError):
            return "timeout" if watchdog.fired else "dead"
        except Exception:  # noqa: BLE001 - the kernel's messages are learner-controlled
            # a kernel that breaks the protocol (e.g. a patched json.dumps) is treated as dead:
            # it is killed and restarted, never trusted again, and never crashes the grader
            status = "timeout" if watchdog.fired else "dead"
            self._killpg(signal.SIGKILL)
            deadline = time.monotonic() + INTERRUPT_GRACE_S
            while self.alive and time.monotonic() < deadline:  # so the caller sees it dead
                time.sleep(0.01)
            return status
        if watchdog.fired:
            return "timeout"
        return "error" if any(o.get("output_type") == "error" for o in cell.get("outputs", [])) else "ok"


StdinAnswer = Callable[[str], "str | None"]  # a prompt from input() in, the reply out


@contextlib.contextmanager
def _stdin_answered(client: CappedClient, answer: StdinAnswer) -> Iterator[None]:
    """While the block runs a cell, answer the kernel's ``input_request`` messages.

    A task in nbclient's event loop (started by nbclient's ``on_cell_execute`` hook, so it runs
    while the cell does) answers each request with ``answer(prompt)``. What the kernel sends is
    learner-controlled text; the caller judges it. The cell's own timeout bounds it all.
    """
    kc = client.kc
    if kc is None:
        yield
        return
    tasks: list[asyncio.Future[None]] = []

    def start(**_: Any) -> None:
        tasks.append(asyncio.ensure_future(_answer_stdin(kc, answer)))

    previous = client.on_cell_execute
    client.on_cell_execute = start
    kc.allow_stdin = True
    try:
        yield
    finally:
        kc.allow_stdin = False
        client.on_cell_execute = previous
        for task in tasks:
            task.cancel()
        if tasks:  # let the loop see the cancellation now (it only runs inside requests)
            with contextlib.suppress(Exception):
                run_sync(_settle)(tasks)


async def _answer_stdin(kc: Any, answer: StdinAnswer) -> None:
    while True:
        msg = await kc.stdin_channel.get_msg(timeout=None)
        if msg.get("header", {}).get("msg_type") != "input_request":
            continue
        prompt = (msg.get("content") or {}).get("prompt")
        try:
            reply = answer(prompt if isinstance(prompt, str) else "")
        except Exception:  # noqa: BLE001 - a grader bug must not leave the kernel waiting
            reply = None
        kc.input("\x04" if reply is None else reply)  # "\x04": ipykernel raises EOFError


async def _settle(tasks: list[asyncio.Future[None]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
