"""How the learner's kernel is launched and contained.

Every tier runs the kernel as a separate process in its own process group, with rlimits set by
``mlgrade.launch`` and a scrubbed environment (an allow-list: no tokens, no ``GITHUB_*``). The
tier that ran is stamped into every result. Stronger tiers build on :class:`ProcessSandbox`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlgrade.config import Settings

# variables copied from the grader's environment into the kernel's; everything else is dropped
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SYSTEMROOT")

FILE_SIZE_MB = 512  # largest file the kernel may write (also caps its captured stdout/stderr)
OPEN_FILES = 1024


@dataclass(frozen=True)
class KernelLaunch:
    """What the kernel manager needs to start one kernel."""

    argv: list[str]  # may contain "{connection_file}"
    env: dict[str, str]
    transport: str = "tcp"  # "ipc" where TCP cannot cross the sandbox's network namespace


class Sandbox(Protocol):
    """A way to launch the learner's kernel. ``tier`` is stamped into results."""

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


def kernel_python() -> str:
    """The interpreter that runs learner kernels: this one, unless MLGRADE_KERNEL_PYTHON says
    otherwise (e.g. a course environment with extra packages; it needs ipykernel)."""
    return os.environ.get("MLGRADE_KERNEL_PYTHON") or sys.executable


def ipykernel_argv() -> list[str]:
    return [kernel_python(), "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.enabled=False"]


def rlimit_argv(settings: Settings) -> list[str]:
    """``python -m mlgrade.launch`` with this run's limits, to prefix the kernel command."""
    argv = [sys.executable, "-m", "mlgrade.launch", "--fsize-mb", str(FILE_SIZE_MB),
            "--nofile", str(OPEN_FILES)]
    if settings.memory_mb:
        argv += ["--as-mb", str(settings.memory_mb)]
    return argv + ["--"]


class ProcessSandbox:
    """Separate process and process group, rlimits, scrubbed environment. Works everywhere."""

    tier = "process"

    def launch(self, job_dir: Path, run_dir: Path, settings: Settings) -> KernelLaunch:
        (job_dir / ".tmp").mkdir(exist_ok=True)
        return KernelLaunch(argv=rlimit_argv(settings) + ipykernel_argv(), env=kernel_env(job_dir))


class NoSandbox:
    """``--isolation none``: the kernel still runs in its own process, without limits."""

    tier = "none"

    def launch(self, job_dir: Path, run_dir: Path, settings: Settings) -> KernelLaunch:
        (job_dir / ".tmp").mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(kernel_env(job_dir))
        return KernelLaunch(argv=ipykernel_argv(), env=env)


def choose_sandbox(settings: Settings, purpose: str = "check") -> Sandbox:
    """The sandbox for ``settings.isolation`` (``auto`` picks the best available tier).

    ``purpose`` is ``"check"`` (a learner on their own machine: best effort) or ``"grade"``
    (a lead recording official scores: stricter requirements).
    """
    if settings.isolation == "none":
        return NoSandbox()
    return ProcessSandbox()
