"""Starting one kernel through the sandbox: the launch half of a :class:`KernelSession`.

The sandbox supplies the command, environment and transport; nbclient's client starts it with
mlgrade's output caps, in the job folder, its stdout and stderr going to a log file of its own.
Starting is two steps, :func:`spawn_kernel` (the process) and :func:`connect_kernel` (wait
until it answers), so a kernel can boot while its caller does other work
(:mod:`mlgrade.prestart`); :func:`launch_kernel` does both.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec
from nbformat import NotebookNode

from mlgrade.config import Settings
from mlgrade.errors import KernelStartError
from mlgrade.kernel_output import BoundedKernelManager, CappedClient
from mlgrade.sandbox import Sandbox
from mlgrade.sandbox.canary import Canary
from mlgrade.watchdog import signal_group


@dataclass
class LaunchedKernel:
    """A started kernel: its client, what closes it (``stack``), its process group, and the
    sandbox's canary to run before any learner code (None for tiers without one)."""

    client: CappedClient
    stack: contextlib.ExitStack
    pgid: int | None
    canary: Canary | None
    log_path: Path | None = None  # the kernel's own stdout/stderr


def log_tail(path: Path, size: int = 2000) -> str:
    """The end of a kernel's log; the kernel (learner code) wrote it, so never read all of it."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - size, 0))
            return handle.read(size).decode(errors="replace")
    except OSError:
        return ""


def launch_kernel(nb: NotebookNode, job_dir: Path, run_dir: Path, settings: Settings,
                  sandbox: Sandbox, number: int) -> LaunchedKernel:
    """Start kernel number ``number`` of a session (files ``kernel-N.*`` in ``run_dir``)."""
    return connect_kernel(spawn_kernel(nb, job_dir, run_dir, settings, sandbox, number))


def spawn_kernel(nb: NotebookNode, job_dir: Path, run_dir: Path, settings: Settings,
                 sandbox: Sandbox, number: int) -> LaunchedKernel:
    """The first half of :func:`launch_kernel`: the kernel's process is started and boots on
    its own; :func:`connect_kernel` waits for it. Until then :func:`discard` stops it."""
    launch = sandbox.launch(job_dir, run_dir, settings)
    # an answer document is JSON inside JSON (escapes): room for twice the result cap
    km = BoundedKernelManager(kernel_name="mlgrade-sandboxed", max_message_bytes=2 * max(
        settings.max_result_bytes, settings.max_cell_output) + (1 << 20))
    # The submission's kernelspec is ignored: we always launch our own command.
    km._kernel_spec = KernelSpec(argv=launch.argv, language="python",
                                 display_name="mlgrade", env={})
    km.transport = launch.transport
    conn = launch.conn_dir or run_dir  # the kernel must reach its connection file
    if launch.transport == "ipc":
        km.ip = str(conn / f"kernel-{number}")
    km.connection_file = str(conn / f"kernel-{number}.json")
    client = CappedClient(
        nb, km=km, timeout=None, allow_errors=True, record_timing=False,
        startup_timeout=int(settings.startup_timeout), shutdown_kernel="immediate",
        kernel_name="mlgrade-sandboxed", coalesce_streams=False, store_widget_state=False,
    )  # CappedClient merges streams itself, in linear time; widget state is never kept
    client.configure_caps(settings.max_cell_output, settings.max_total_output)
    stack = contextlib.ExitStack()
    # the kernel's own stdout/stderr: kept out of ours, closed with the session
    log_path = run_dir / f"kernel-{number}.log"
    log = stack.enter_context(open(log_path, "wb"))  # noqa: SIM115
    try:
        client.start_new_kernel(cwd=str(job_dir), env=launch.env, stdout=log, stderr=log)
    except Exception as exc:
        stack.close()
        raise _start_error(log_path, exc) from exc
    pgid = None
    process = getattr(km.provisioner, "process", None)
    if process is not None:
        with contextlib.suppress(ProcessLookupError):
            pgid = os.getpgid(process.pid)
    return LaunchedKernel(client, stack, pgid, launch.canary, log_path)


def connect_kernel(spawned: LaunchedKernel) -> LaunchedKernel:
    """Wait until a spawned kernel answers (its client's channels open); a kernel that never
    does is stopped and reported."""
    try:
        spawned.stack.enter_context(spawned.client.setup_kernel())
    except Exception as exc:
        discard(spawned)
        raise _start_error(spawned.log_path, exc) from exc
    return spawned


def discard(launched: LaunchedKernel) -> None:
    """Stop a kernel no session took over: close what it holds, kill its process group."""
    try:
        launched.stack.close()
    finally:
        signal_group(launched.pgid, signal.SIGKILL)


def _start_error(log_path: Path | None, exc: Exception) -> KernelStartError:
    lines = ((log_tail(log_path) if log_path else "") or f"{type(exc).__name__}: {exc}").strip().splitlines()
    return KernelStartError(
        f"could not start a Python kernel ({(lines or [type(exc).__name__])[-1][:200]}). "
        "Install ipykernel in this environment: `pip install ipykernel`."
    )
