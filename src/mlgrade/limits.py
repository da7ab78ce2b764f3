"""The bottom floor: small shared facts that settings, assignments and sandboxes all use, so
each of those depends downward only (``sandbox`` -> ``config`` -> ``assignments`` never loops
back).

- :class:`Limits`: the time limits an assignment asks for;
- :func:`kernel_python`: the interpreter that runs learner kernels.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Time limits an assignment asks for (seconds); ``None`` means mlgrade's default."""

    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    call_timeout: float | None = None


def kernel_python() -> str:
    """The interpreter that runs learner kernels: this one, unless MLGRADE_KERNEL_PYTHON says
    otherwise (e.g. a course environment with extra packages; it needs ipykernel)."""
    return os.environ.get("MLGRADE_KERNEL_PYTHON") or sys.executable


__all__ = ["Limits", "kernel_python"]
