"""NVIDIA GPUs and the sandbox: what to bind into the box, and which memory limit applies.

CUDA reserves far more address space than it uses, so the kernel's ``RLIMIT_AS`` makes CUDA
initialisation fail ("out of memory") and the learner's training silently runs on the CPU.
With NVIDIA devices present the sandbox therefore limits memory with the cgroup layer's
``memory.max`` (resident memory, which CUDA's reservations do not count against) and never
with ``RLIMIT_AS``; without a writable cgroup the kernel then has no memory limit, and the
result says so.

Every function takes the file-system ``root`` to look under (``/`` on a real machine), so the
branch logic can be tested on a machine without a GPU with a fake tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlgrade.config import Settings

# where CUDA's user-space driver (libcuda, libnvidia-*) is installed on common distributions
# and in NVIDIA's container images
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                "/lib/x86_64-linux-gnu", "/lib64", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib",
                "/usr/local/cuda/lib64", "/usr/local/cuda/compat", "/usr/lib/wsl/lib",
                "/opt/nvidia/lib64")
DRIVER_PATHS = ("/proc/driver/nvidia", "/run/nvidia-persistenced", "/etc/nvidia",
                "/usr/share/nvidia")
LIBRARY_PREFIXES = ("libcuda.so", "libnvidia-", "libnvcuvid.so", "libcudadebugger.so")


def _under(root: Path | str, path: str) -> Path:
    return Path(root) / path.lstrip("/")


def nvidia_devices(root: Path | str = "/") -> list[str]:
    """The NVIDIA device nodes (``/dev/nvidia0``, ``/dev/nvidiactl``, ``/dev/nvidia-uvm``, the
    ``/dev/nvidia-caps`` folder, ...), as paths on the real machine (relative to ``root``)."""
    dev = _under(root, "/dev")
    try:
        names = sorted(n for n in os.listdir(dev) if n.startswith("nvidia"))
    except OSError:
        return []
    return ["/dev/" + n for n in names]


def gpu_present(root: Path | str = "/") -> bool:
    """Whether NVIDIA devices exist here (the driver is loaded)."""
    return bool(nvidia_devices(root))


def gpu_names(root: Path | str = "/") -> list[str]:
    """The models the driver reports (``/proc/driver/nvidia/gpus/*/information``), read
    without loading CUDA; a GPU whose model cannot be read is listed as "NVIDIA GPU"."""
    if not gpu_present(root):
        return []
    gpus = _under(root, "/proc/driver/nvidia/gpus")
    names: list[str] = []
    try:
        entries = sorted(os.listdir(gpus))
    except OSError:
        entries = []
    for entry in entries:
        model = "NVIDIA GPU"
        try:
            for line in (gpus / entry / "information").read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Model" and value.strip():
                    model = value.strip()
        except OSError:
            pass
        names.append(model)
    if not names:  # no driver information: one entry per numbered device node
        names = ["NVIDIA GPU" for d in nvidia_devices(root) if d[len("/dev/nvidia"):].isdigit()]
    return names


def driver_library_dirs(root: Path | str = "/") -> list[str]:
    """Folders that hold CUDA's user-space driver libraries."""
    found = []
    for folder in LIBRARY_DIRS:
        try:
            names = os.listdir(_under(root, folder))
        except OSError:
            continue
        if any(n.startswith(LIBRARY_PREFIXES) for n in names):
            found.append(folder)
    return found


def gpu_binds(root: Path | str = "/", already: tuple[str, ...] = ("/usr", "/etc")) -> list[str]:
    """bubblewrap arguments that make the GPU usable inside the namespaced box: each device
    node (``--dev-bind``), the driver's ``/proc`` and ``/run`` entries and every driver library
    folder that the box does not already show (``already``: folders bound read-only anyway).
    Empty when no NVIDIA device exists."""
    devices = nvidia_devices(root)
    if not devices:
        return []
    args: list[str] = []
    for device in devices:  # source under ``root``, destination at the real path in the box
        args += ["--dev-bind", str(_under(root, device)), device]
    covered = tuple(a.rstrip("/") + "/" for a in already)
    for path in (*DRIVER_PATHS, *driver_library_dirs(root)):
        if (path + "/").startswith(covered) or path in already:
            continue
        if os.path.lexists(_under(root, path)):
            args += ["--ro-bind-try", str(_under(root, path)), path]
    return args


@dataclass(frozen=True)
class MemoryLimit:
    """How the kernel's memory is limited: ``RLIMIT_AS`` and/or cgroup ``memory.max``."""

    rlimit_as_mb: int  # 0: no address-space limit
    cgroup_mb: int  # 0: no cgroup memory limit
    reason: str = ""  # why a limit is absent, when it is

    def describe(self) -> str:
        """``"cgroup memory.max 6144 MiB"``, ``"RLIMIT_AS 6144 MiB"``, or ``"none: ..."``."""
        parts = []
        if self.cgroup_mb:
            parts.append(f"cgroup memory.max {self.cgroup_mb} MiB")
        if self.rlimit_as_mb:
            parts.append(f"RLIMIT_AS {self.rlimit_as_mb} MiB")
        text = " + ".join(parts) or "none"
        return f"{text}: {self.reason}" if self.reason else text


def memory_limit(memory_mb: int, *, gpu: bool, cgroup: bool) -> MemoryLimit:
    """The limits for a kernel asked to stay within ``memory_mb`` (0: no limit).

    Without a GPU: ``RLIMIT_AS`` (everywhere) plus cgroup ``memory.max`` when the cgroup layer
    is on. With NVIDIA devices: never ``RLIMIT_AS`` (CUDA cannot initialise under it); cgroup
    ``memory.max`` when available, else no limit.
    """
    if not memory_mb:
        return MemoryLimit(0, 0, "--memory-mb 0")
    if not gpu:
        return MemoryLimit(memory_mb, memory_mb if cgroup else 0)
    if cgroup:
        return MemoryLimit(0, memory_mb, "GPU present, RLIMIT_AS off")
    return MemoryLimit(0, 0, "GPU present and no cgroup")


def kernel_notes(device: str, limit: MemoryLimit, gpu: bool) -> tuple[str, ...]:
    """Notices for the result on a machine with NVIDIA devices (elsewhere the defaults apply
    and nothing is said): which GPU the kernel was given and how its memory was limited."""
    if not gpu:
        return ()
    return (f"GPU visible to the kernel: {device}", f"memory limit: {limit.describe()}")


__all__ = ["MemoryLimit", "describe_kernel", "driver_library_dirs", "gpu_binds", "gpu_names", "gpu_present",
           "kernel_notes", "memory_limit", "nvidia_devices"]


def describe_kernel(sandbox: object, settings: Settings) -> tuple[str, tuple[str, ...]]:
    """For the result: the GPU(s) the sandbox gave the kernel (or ``"none"``) and the notices
    of :func:`kernel_notes`. Sandboxes without these attributes (custom ones) say ``"none"``."""
    device = str(getattr(sandbox, "device", "none"))
    limit_of = getattr(sandbox, "memory_limit", None)
    if limit_of is None:
        return device, ()
    return device, kernel_notes(device, limit_of(settings), bool(getattr(sandbox, "gpu", False)))
