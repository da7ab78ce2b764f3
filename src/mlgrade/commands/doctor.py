"""``mlgrade doctor``: can this machine run each month, how is the kernel contained, is there a GPU.

Nothing heavy is imported into mlgrade's own process: packages are looked up (not imported)
in the kernel's interpreter, and torch's view of CUDA is asked of that interpreter in a
subprocess with a short timeout.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from dataclasses import dataclass

from rich.console import Console

from mlgrade import __version__
from mlgrade.assignments import Assignment, install_hint, list_assignments, missing_modules
from mlgrade.commands._common import assignments_root, handles_errors, sub_app
from mlgrade.config import Settings
from mlgrade.errors import SandboxUnavailableError

app = sub_app()
GPU_PROBE_TIMEOUT_S = 30.0  # importing torch alone can take seconds on a cold disk
GPU_PROBE = """\
import json, torch
ok = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "available": ok,
                  "names": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if ok else []}))
"""


@dataclass(frozen=True)
class MonthStatus:
    """One assignment's readiness on this machine."""

    assignment: Assignment
    missing: tuple[str, ...]

    @property
    def runnable(self) -> bool:
        return not self.missing


def month_status(assignments: list[Assignment], python: str) -> list[MonthStatus]:
    """Which assignments the interpreter ``python`` (the kernel's) has every package for."""
    return [MonthStatus(a, missing_modules(a.requires, python)) for a in assignments]


def torch_gpu(python: str) -> str:
    """What torch in the kernel's interpreter sees: ``"NVIDIA H200 (torch 2.x, CUDA 12.x)"``,
    ``"none (...)"`` with the reason."""
    if missing_modules(("torch",), python):
        return "none (torch is not installed in the kernel's environment)"
    try:
        done = subprocess.run([python, "-I", "-c", GPU_PROBE], capture_output=True, text=True,
                              timeout=GPU_PROBE_TIMEOUT_S, check=False)
        info = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return f"unknown (torch did not answer within {GPU_PROBE_TIMEOUT_S:g} s)"
    except (OSError, ValueError, IndexError):
        return "unknown (torch could not be asked)"
    if not info["available"]:
        build = "CPU-only build" if info["cuda"] is None else f"CUDA {info['cuda']} build"
        return f"none (torch {info['torch']}, {build}: cuda is not available)"
    return f"{', '.join(info['names'])} (torch {info['torch']}, CUDA {info['cuda']})"


def sandbox_lines(settings: Settings) -> list[str]:
    """The tier `check` would use, whether `grade` can run, the memory limit, GPU devices."""
    from mlgrade.sandbox import choose_sandbox
    from mlgrade.sandbox.gpu import gpu_names, nvidia_devices

    lines = []
    sandbox = choose_sandbox(settings)
    lines.append(f"isolation for `check`: {getattr(sandbox, 'isolation', sandbox.tier)}")
    try:
        choose_sandbox(settings, "grade")
        lines.append("isolation for `grade`: available (namespaced tier)")
    except SandboxUnavailableError as exc:
        lines.append(f"isolation for `grade`: unavailable ({exc})")
    limit_of = getattr(sandbox, "memory_limit", None)
    if limit_of is not None:
        lines.append(f"kernel memory limit: {limit_of(settings).describe()}")
    devices = nvidia_devices()
    if devices:
        lines.append(f"NVIDIA devices: {' '.join(devices)} ({', '.join(gpu_names()) or 'model unknown'});"
                     " bound into the sandbox, no RLIMIT_AS")
    else:
        lines.append("NVIDIA devices: none")
    return lines


@app.command()
@handles_errors
def doctor() -> None:
    """Show which months this environment can run, the sandbox tier, and whether the kernel sees a GPU."""
    from mlgrade.sandbox import kernel_python

    python = kernel_python()
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"mlgrade {__version__} on Python {platform.python_version()} ({sys.executable})",
              markup=False)
    same = python == sys.executable
    out.print(f"kernel interpreter: {'the same' if same else python + ' (MLGRADE_KERNEL_PYTHON)'}",
              markup=False)
    for line in sandbox_lines(Settings()):
        out.print(line, markup=False)
    out.print(f"GPU visible to the kernel's torch: {torch_gpu(python)}", markup=False)

    out.print("assignments (runnable here?):", markup=False)
    for status in month_status(list_assignments(assignments_root()), python):
        a = status.assignment
        if status.runnable:
            out.print(f"  {a.name}: yes ({a.title})", markup=False)
        else:
            out.print(f"  {a.name}: no: {', '.join(status.missing)} missing; install: "
                      f"{install_hint(a, python)}", markup=False)
