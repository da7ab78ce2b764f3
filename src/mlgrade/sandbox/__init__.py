"""How the learner's kernel is launched and contained (see ``docs/security.md``).

Tiers, weakest first; the one that ran is stamped into every result (``GradeResult.isolation``):

- ``none``: explicit ``--isolation none`` only; results say "UNISOLATED — not for official
  grades".
- ``process`` (everywhere): own process group, rlimits, an allow-listed environment, kernel
  stdout/stderr to a capped log file, watchdog; as root, also a per-slot unprivileged uid.
- ``namespaced`` (Linux + bubblewrap): ``process`` plus network, pid, ipc, uts and mount
  namespaces, a read-only system, only the Python prefix, the job folder and the connection
  folder visible.
- ``+cgroup`` (Linux, writable cgroups; :mod:`mlgrade.sandbox.cgroup`): a layer on either
  tier, stamped e.g. ``namespaced+cgroup``: memory and pids limits for the kernel and all it
  starts, ``cgroup.kill`` teardown verified empty. ``tier`` stays the base tier; results
  carry the sandbox's ``isolation``.

``choose_sandbox`` applies the policy: ``check`` takes the best tier available; ``grade``
requires ``namespaced`` on Linux unless ``--isolation none`` was asked for explicitly.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlgrade.config import Settings
from mlgrade.errors import SandboxUnavailableError
from mlgrade.limits import kernel_python
from mlgrade.sandbox.canary import Canary

# variables copied from the grader's environment into the kernel's; everything else is dropped
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SYSTEMROOT")

FILE_SIZE_MB = 512  # largest file the kernel may write (also caps its captured stdout/stderr)
OPEN_FILES = 1024
PROCESSES = 512  # per slot uid (threads count too: BLAS and torch pools)
UNISOLATED_NOTICE = "UNISOLATED — not for official grades (--isolation none)"


@dataclass(frozen=True)
class KernelLaunch:
    """What the kernel manager needs to start one kernel."""

    argv: list[str]  # may contain "{connection_file}"
    env: dict[str, str]
    transport: str = "tcp"  # "ipc" where TCP cannot cross the sandbox's network namespace
    conn_dir: Path | None = None  # where the connection file and ipc sockets go (else run_dir)
    canary: Canary | None = None  # checked in the kernel before any learner code runs


class Sandbox(Protocol):
    """A way to launch the learner's kernel. ``tier`` is stamped into results.

    Sandboxes may also offer ``isolation`` (the stamp for results when it is more than
    ``tier``, e.g. ``"process+cgroup"``), ``protect(*paths)`` (paths the kernel must not see),
    ``reap()`` (after a kernel stopped: kill leftovers, verify none remain, else raise
    ``SandboxUnavailableError``) and ``release()`` (end of a submission); callers use them
    when present.
    """

    tier: str

    def launch(self, job_dir: Path, run_dir: Path, settings: Settings) -> KernelLaunch: ...


def kernel_env(job_dir: Path) -> dict[str, str]:
    """The kernel's environment: allow-listed variables plus private homes inside the job."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.setdefault("PATH", os.defpath)
    home = str(job_dir)
    env.update(
        HOME=home,
        TMPDIR=str(job_dir / ".tmp"),
        IPYTHONDIR=str(job_dir / ".ipython"),
        MPLCONFIGDIR=str(job_dir / ".config" / "matplotlib"),
        JUPYTER_CONFIG_DIR=str(job_dir / ".jupyter"),
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",  # deterministic hashing: same notebook, same score
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        MLGRADE_KERNEL="1",
    )
    return env


def ipykernel_argv() -> list[str]:
    return [kernel_python(), "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.enabled=False"]


def launcher_argv(*options: str) -> list[str]:
    """``mlgrade.launch`` run from its source with ``-I -S``: nothing from the (learner-writable)
    working folder or from site hooks is imported by this step, which may run as root."""
    from mlgrade.sandbox.process import LAUNCH_SOURCE

    return [kernel_python(), "-I", "-S", "-c", LAUNCH_SOURCE, *options, "--"]


def rlimit_argv(settings: Settings) -> list[str]:
    """The launcher with this run's limits, to prefix the kernel command."""
    return launcher_argv(*limit_options(settings))


def limit_options(settings: Settings, file_size_mb: int = FILE_SIZE_MB) -> list[str]:
    options = ["--fsize-mb", str(file_size_mb), "--nofile", str(OPEN_FILES)]
    if settings.memory_mb:
        options += ["--as-mb", str(settings.memory_mb)]
    return options


from mlgrade.sandbox.namespaced import NamespacedSandbox, namespaced_problem  # noqa: E402
from mlgrade.sandbox.process import NoSandbox, ProcessSandbox  # noqa: E402

HOW_TO = ("install bubblewrap (`sudo apt-get install -y bubblewrap`) and run mlgrade as root, "
          "or enable unprivileged user namespaces (`sudo sysctl -w "
          "kernel.unprivileged_userns_clone=1` / `kernel.apparmor_restrict_unprivileged_userns=0`);"
          " see docs/security.md. "
          "`--isolation none` grades without a sandbox, stamped UNISOLATED")


def sandbox_soon(settings: Settings) -> Callable[[], Sandbox]:
    """:func:`choose_sandbox` for a learner's check, in two steps: the probe it needs (one
    bubblewrap run) starts now in the background, so that it overlaps other start-up work;
    calling the result waits for it and chooses."""
    probe = None
    if settings.isolation != "none" and sys.platform.startswith("linux"):
        probe = threading.Thread(target=namespaced_problem, name="mlgrade-probe", daemon=True)
        probe.start()

    def choose() -> Sandbox:
        if probe is not None:
            probe.join()
        return choose_sandbox(settings)

    return choose


def choose_sandbox(settings: Settings, purpose: str = "check", slot: int = 0) -> Sandbox:
    """The sandbox for ``settings.isolation`` (``auto`` picks the best available tier).

    ``purpose`` is ``"check"`` (a learner on their own machine: best effort, the tier is
    reported) or ``"grade"`` (a lead recording official scores: at least ``namespaced`` on
    Linux). ``slot`` is the batch worker's index: each slot gets its own unprivileged uid.
    """
    if purpose not in ("check", "grade"):
        raise ValueError(f"unknown sandbox purpose {purpose!r}")
    wanted = settings.isolation
    if wanted == "none":
        return NoSandbox()
    linux = sys.platform.startswith("linux")
    problem = namespaced_problem() if linux else "namespaces need Linux"
    if wanted == "namespaced" or (wanted == "auto" and purpose == "grade" and linux):
        if problem:
            raise SandboxUnavailableError(f"the namespaced sandbox is unavailable ({problem}): "
                                          f"{HOW_TO}.")
        return NamespacedSandbox(slot=slot)
    if wanted == "process":
        if purpose == "grade" and linux:
            raise SandboxUnavailableError(
                "`mlgrade grade` needs at least the namespaced sandbox on Linux, not --isolation "
                f"process: {HOW_TO}."
            )
        return ProcessSandbox(slot=slot)
    return ProcessSandbox(slot=slot) if problem else NamespacedSandbox(slot=slot)


__all__ = [
    "FILE_SIZE_MB", "HOW_TO", "KernelLaunch", "NamespacedSandbox", "NoSandbox", "ProcessSandbox",
    "Sandbox", "UNISOLATED_NOTICE", "choose_sandbox", "ipykernel_argv", "kernel_env",
    "kernel_python", "rlimit_argv", "sandbox_soon",
]
