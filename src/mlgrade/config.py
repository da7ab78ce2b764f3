"""Settings, resolved once: CLI flag > environment variable > assignment metadata > default.

Names follow Jupyter's vocabulary (``timeout``, ``startup_timeout``). A bad value's error says
where the value came from.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from mlgrade.errors import SettingError
from mlgrade.limits import Limits
from mlgrade.results import GradeResult

DEFAULT_SEED = 20_260_101  # `check` for learners: reproducible by design
# Output formats that produce an official grade on a platform: they draw a secret seed per run.
OFFICIAL_FORMATS = frozenset({"classroom", "gradescope", "prairielearn"})


class SeedOrigin(str, Enum):
    """Where a run's seed came from (recorded with official grades)."""

    DEFAULT = "default"  # DEFAULT_SEED: learners' own checks
    PINNED = "pinned"  # --seed or MLGRADE_SEED
    DRAWN = "drawn"  # drawn with `secrets` for this run (or this gradebook and assignment)


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
    seed_origin: SeedOrigin = SeedOrigin.DEFAULT


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


def draw_seed() -> int:
    """An unpredictable seed for an official grade: a notebook that has read the graders'
    source cannot regenerate their random inputs without it."""
    # below 2**32: graders hand the seed to NumPy and scikit-learn `random_state`
    return secrets.randbelow(2**32 - 1) + 1


def resolve_settings(
    cli: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    official: bool = False,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings; ``None`` CLI values fall through to the next source.

    ``official``: the result is a grade that counts (a platform format), so unless the seed is
    pinned (``--seed`` or ``MLGRADE_SEED``) a fresh one is drawn with :func:`draw_seed`; the
    default seed stays for learners' own checks. ``mlgrade grade`` pins the seed it keeps in
    the gradebook per assignment (see :mod:`mlgrade.batch.gradebook`).
    """
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
            values[name] = _checked(name, raw, (flags or {}).get(name, f"--{name.replace('_', '-')}"))
    if "seed" in values:
        values["seed_origin"] = SeedOrigin.PINNED
    elif official:
        values.update(seed=draw_seed(), seed_origin=SeedOrigin.DRAWN)
    return replace(Settings(), **values)


def seed_note(settings: Settings) -> str:
    """One line for an official result: which seed graded it and where it came from."""
    if settings.seed_origin is SeedOrigin.DRAWN:
        return (f"seed {settings.seed} (drawn): graded with a secret seed drawn for this run; "
                "pass it as --seed to reproduce this grade.")
    return f"seed {settings.seed} ({settings.seed_origin.value})"


def with_seed_origin(result: GradeResult, settings: Settings, fmt: str) -> GradeResult:
    """For an official format, the result with its seed's origin recorded among the notices."""
    if fmt not in OFFICIAL_FORMATS:
        return result
    return replace(result, notices=(*result.notices, seed_note(settings)))
