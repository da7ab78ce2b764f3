"""Starting one kernel through the sandbox, and closing all of it: the launch half of a
:class:`KernelSession`.

The sandbox supplies the command, environment and transport; nbclient's client starts it with
mlgrade's output caps, in the job folder, its stdout and stderr going to a log file of its own.

nbclient shuts down only a kernel manager it created itself; ours is given to it, so closing
is done here (:func:`close_kernel`): the client's channels and ZMQ context, the kernel's
process group, the child process reaped (no zombie), the manager's control socket, ZMQ
context and connection files. A batch worker grades hundreds of submissions: each one must
leave no descriptor and no process behind.

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
from jupyter_core.utils import run_sync
from nbformat import NotebookNode

from mlgrade.config import Settings
from mlgrade.errors import KernelStartError, OutOfDescriptors, out_of_descriptors
from mlgrade.kernel_output import BoundedKernelManager, CappedClient
from mlgrade.reaping import reap_child
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
    require_descriptors()
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
    stack.callback(close_kernel, client, km)  # also after a start that failed half-way
    try:
        client.start_new_kernel(cwd=str(job_dir), env=launch.env, stdout=log, stderr=log)
    except Exception as exc:
        stack.close()
        raise start_error(exc, log_tail(log_path)) from exc
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
        log = log_tail(spawned.log_path) if spawned.log_path else ""
        raise start_error(exc, log) from exc
    return spawned


def discard(launched: LaunchedKernel) -> None:
    """Stop a kernel no session took over: close what it holds (:func:`close_kernel` kills
    its process group and reaps it)."""
    launched.stack.close()


def close_kernel(client: CappedClient, km: BoundedKernelManager) -> None:
    """Close everything one kernel start opened; safe on a half-started kernel, and twice."""
    kc, client.kc = client.kc, None
    try:
        if kc is not None:
            kc.stop_channels()  # its sockets, the heartbeat thread, and its own ZMQ context
    finally:
        provisioner = km.provisioner
        process = getattr(provisioner, "process", None)
        if process is not None:
            if process.returncode is None:  # not reaped yet, so its pid is still its own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    group = os.getpgid(process.pid)
                    if group != os.getpgrp():  # its own session (jupyter_client's), never ours
                        signal_group(group, signal.SIGKILL)
            reap_child(process)  # patient; one still exiting is reaped by a later call
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            # LocalProvisioner's attribute: the manager now knows it has no kernel
            setattr(provisioner, "process", None)  # noqa: B010
        # the control socket, the manager's own ZMQ context, connection and ipc files
        run_sync(km.cleanup_resources)()


def start_error(exc: BaseException, log: str) -> KernelStartError:
    """Why a kernel did not start, in one line, with the advice that fits the cause."""
    lines = (log or f"{type(exc).__name__}: {exc}").strip().splitlines()
    last = (lines or [type(exc).__name__])[-1][:200]
    if out_of_descriptors(exc) or "Too many open files" in last:
        return OutOfDescriptors(f"could not start a Python kernel: {last}")
    error = KernelStartError(
        f"could not start a Python kernel ({last}). "
        "Install ipykernel in this environment: `pip install ipykernel`.")
    error.slow = isinstance(exc, TimeoutError) or "didn't respond" in str(exc)
    return error


FD_HEADROOM = 64  # descriptors a kernel start and its grading need, with room to spare


def open_descriptors() -> int | None:
    """How many descriptors this process has open (None where the OS cannot say)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return len(os.listdir(folder)) - 1  # less the one listdir itself opened
    return None


def require_descriptors(needed: int = FD_HEADROOM) -> None:
    """Refuse to start a kernel with fewer than ``needed`` descriptors left: ZMQ aborts the
    whole process (no exception) when its I/O thread cannot open one."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to check
        return
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    used = open_descriptors()
    if soft == resource.RLIM_INFINITY or used is None:
        return
    if soft - used < needed:
        raise OutOfDescriptors(f"{max(soft - used, 0)} of {soft} free, a kernel and its "
                               f"grading need about {needed}")
