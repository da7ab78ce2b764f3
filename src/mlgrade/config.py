"""Settings, resolved once: CLI flag > environment variable > assignment metadata > default.

Names follow Jupyter's vocabulary (``timeout``, ``startup_timeout``). A bad value's error says
where the value came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from mlgrade.assignments import Limits
from mlgrade.errors import SettingError

DEFAULT_SEED = 20_260_101


@dataclass(frozen=True)
class Settings:
    """Everything that changes how a notebook is run and graded."""

    seed: int = DEFAULT_SEED
    cell_timeout: float = 120.0  # seconds for one cell of the learner's notebook
    notebook_timeout: float = 600.0  # seconds for the whole notebook (all cells)
    call_timeout: float = 60.0  # seconds for one grader call into the kernel
    grading_timeout: float = 600.0  # seconds for all graders of one submission together
    startup_timeout: float = 60.0  # seconds for the kernel to start
    memory_mb: int = 6144  # address-space limit of the kernel process (MiB); 0 disables
    max_cell_output: int = 1_000_000  # bytes of output kept per cell
    max_total_output: int = 5_000_000  # bytes of output kept for the whole notebook
    max_result_bytes: int = 64 * 1024 * 1024  # largest value a grader call may bring back
    isolation: str = "auto"  # auto | process | namespaced | none


# environment variable for each setting that has one
ENV_NAMES = {
    "seed": "MLGRADE_SEED",
    "cell_timeout": "MLGRADE_CELL_TIMEOUT",
    "notebook_timeout": "MLGRADE_NOTEBOOK_TIMEOUT",
    "call_timeout": "MLGRADE_CALL_TIMEOUT",
    "memory_mb": "MLGRADE_MEMORY_MB",
    "isolation": "MLGRADE_ISOLATION",
}


def _caster(name: str) -> Callable[[Any], Any]:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int
    if kind == "float":
        return float
    return str


def _checked(name: str, raw: Any, source: str) -> Any:
    try:
        value = _caster(name)(raw)
    except (TypeError, ValueError):
        raise SettingError(f"{source}: {name} must be a number, got {raw!r}.") from None
    if isinstance(value, float) and not value > 0:
        raise SettingError(f"{source}: {name} must be a positive number of seconds, got {raw!r}.")
    if name == "isolation" and value not in ("auto", "process", "namespaced", "none"):
        raise SettingError(
            f"{source}: isolation must be auto, process, namespaced or none, got {raw!r}."
        )
    if name == "memory_mb" and value < 0:
        raise SettingError(f"{source}: memory_mb must be 0 (no limit) or more, got {raw!r}.")
    return value


def resolve_settings(
    cli: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings; ``None`` CLI values fall through to the next source."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if limits is not None:
        for name in ("cell_timeout", "notebook_timeout", "call_timeout"):
            raw = getattr(limits, name)
            if raw is not None:
                values[name] = _checked(name, raw, "assignment.toml [limits]")
    for name, env_name in ENV_NAMES.items():
        if environ.get(env_name, "").strip():
            values[name] = _checked(name, environ[env_name].strip(), f"environment {env_name}")
    for name, raw in (cli or {}).items():
        if raw is not None:
            values[name] = _checked(name, raw, f"--{name.replace('_', '-')}")
    return replace(Settings(), **values)
