"""Discover stage: find assignments, their metadata, starter notebooks and hidden graders.

Bundled assignments and graders are installed as data files under ``<prefix>/share/mlgrade``
(outside every import path of the learner's kernel). In a source checkout they are read from
the repository root. A study-group lead can point mlgrade at their own folder with
``--assignments DIR`` or ``MLGRADE_ASSIGNMENTS``.

A folder of assignments holds one sub-folder per assignment::

    DIR/month2/assignment.toml     metadata (title, month, topics, questions, limits)
    DIR/month2/month2.ipynb        starter notebook (the name is set in the metadata)
    DIR/month2/data/               optional files copied next to the learner's kernel
    DIR/month2/graders/            hidden graders, or DIR/../graders/month2/
    DIR/month2/solution.ipynb      reference solution, or DIR/../solutions/month2.ipynb

An assignment that needs packages beyond mlgrade's core install declares them
(``requires = ["torch"]``, import names, and ``extra = "deep"``, the mlgrade extra that brings
them); :func:`require_packages` refuses it before any cell runs when the kernel's environment
lacks one, with the command that installs them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from mlgrade._compat import tomllib
from mlgrade.errors import AssignmentInvalidError, MissingPackagesError, UnknownAssignmentError
from mlgrade.limits import Limits, kernel_python

ENV_ASSIGNMENTS = "MLGRADE_ASSIGNMENTS"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Question:
    """One question of an assignment, as its metadata declares it."""

    id: str
    title: str
    points: float


@dataclass(frozen=True)
class Assignment:
    """Everything mlgrade knows about one assignment, resolved to paths."""

    name: str
    title: str
    month: int | None
    topics: tuple[str, ...]
    questions: tuple[Question, ...]
    limits: Limits
    folder: Path
    starter: Path
    graders: Path
    solution: Path | None
    data_dirs: tuple[Path, ...] = field(default=())
    requires: tuple[str, ...] = field(default=())  # import names beyond the core install
    extra: str | None = None  # the mlgrade extra that installs ``requires``

    @property
    def total_points(self) -> float:
        return sum(q.points for q in self.questions)

    def grader_version(self) -> str:
        """A short hash of every grader file: changes whenever a grader changes."""
        digest = hashlib.sha256()
        for path in sorted(self.graders.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(self.graders).as_posix().encode())
                digest.update(b"\0")
                digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


def _repo_root() -> Path | None:
    """The source checkout this module runs from, if it is one (editable install)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "assignments").is_dir():
        return root
    return None


def bundled_roots() -> list[Path]:
    """Candidate folders holding the bundled ``assignments``/``graders``, best first."""
    candidates: list[Path] = []
    repo = _repo_root()
    if repo is not None:
        candidates.append(repo)
    for base in (sysconfig.get_path("data"), sys.prefix):
        share = Path(base) / "share" / "mlgrade"
        if share not in candidates:
            candidates.append(share)
    return [c for c in candidates if (c / "assignments").is_dir()]


def is_bundled(assignment: Assignment) -> bool:
    """Whether ``assignment`` is one that mlgrade ships (its graders are held to the strictest
    checks: no lint pragma)."""
    graders = assignment.graders.resolve()
    return any(graders.is_relative_to((root / "graders").resolve()) for root in bundled_roots())


def default_assignments_dir() -> Path:
    roots = bundled_roots()
    if not roots:
        raise AssignmentInvalidError(
            "the bundled assignments are missing from this installation. "
            "Reinstall mlgrade (`pip install mlgrade`) or pass --assignments DIR."
        )
    return roots[0] / "assignments"


def resolve_assignments_dir(cli_value: Path | None) -> Path:
    """CLI flag > ``MLGRADE_ASSIGNMENTS`` > bundled; a bad value names its source."""
    if cli_value is not None:
        source, path = "--assignments", cli_value
    elif os.environ.get(ENV_ASSIGNMENTS):
        source, path = ENV_ASSIGNMENTS, Path(os.environ[ENV_ASSIGNMENTS])
    else:
        return default_assignments_dir()
    if not path.is_dir():
        raise AssignmentInvalidError(
            f"{source}: {str(path)!r} is not a folder. Point it at a folder that holds "
            "one sub-folder per assignment (see README, 'Your own assignments')."
        )
    return path.resolve()


def _first_existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def load_assignment(folder: Path) -> Assignment:
    """Read ``folder/assignment.toml`` and resolve every path it implies."""
    meta_path = folder / "assignment.toml"
    try:
        meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssignmentInvalidError(
            f"{meta_path} is missing: every assignment folder needs an assignment.toml."
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AssignmentInvalidError(f"{meta_path} is not valid TOML ({exc}). Fix the file.") from None

    name = str(meta.get("name", folder.name))
    try:
        questions = tuple(
            Question(id=str(q["id"]), title=str(q.get("title", q["id"])), points=float(q["points"]))
            for q in meta.get("questions", [])
        )
        raw_limits = meta.get("limits", {})
        limits = Limits(**{k: float(v) for k, v in raw_limits.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise AssignmentInvalidError(
            f"{meta_path}: bad questions or limits entry ({exc}). Each question needs id and "
            "points; limits take cell_timeout, notebook_timeout, call_timeout in seconds."
        ) from None
    requires = meta.get("requires", [])
    extra = meta.get("extra")
    if (not isinstance(requires, list) or not all(isinstance(r, str) and r.isidentifier() for r in requires)
            or not (extra is None or (isinstance(extra, str) and extra.replace("-", "").isalnum()))):
        raise AssignmentInvalidError(
            f"{meta_path}: `requires` must be a list of import names (e.g. [\"torch\"]) and "
            "`extra` the name of an mlgrade extra (e.g. \"deep\"). Fix the file.")

    starter = folder / str(meta.get("starter", f"{name}.ipynb"))
    graders = _first_existing(folder / "graders", folder.parent.parent / "graders" / name)
    if graders is None:
        raise AssignmentInvalidError(
            f"no graders found for {name!r}: expected {folder / 'graders'} or "
            f"{folder.parent.parent / 'graders' / name}."
        )
    solution = _first_existing(
        folder / "solution.ipynb", folder.parent.parent / "solutions" / f"{name}.ipynb"
    )
    data_dirs = tuple(p for p in [folder / "data"] if p.is_dir())
    month = meta.get("month")
    return Assignment(
        name=name,
        title=str(meta.get("title", name)),
        month=int(month) if month is not None else None,
        topics=tuple(str(t) for t in meta.get("topics", [])),
        questions=questions,
        limits=limits,
        folder=folder,
        starter=starter,
        graders=graders,
        solution=solution,
        data_dirs=data_dirs,
        requires=tuple(requires),
        extra=extra,
    )


def list_assignments(root: Path) -> list[Assignment]:
    """Every assignment under ``root``, ordered by month then name."""
    found = [load_assignment(p) for p in sorted(root.iterdir()) if (p / "assignment.toml").is_file()]
    return sorted(found, key=lambda a: (a.month if a.month is not None else 99, a.name))


def get_assignment(root: Path, name: str) -> Assignment:
    folder = root / name
    if not name or "/" in name or name.startswith(".") or not (folder / "assignment.toml").is_file():
        known = [p.name for p in sorted(root.iterdir()) if (p / "assignment.toml").is_file()]
        raise UnknownAssignmentError(name, known)
    return load_assignment(folder)


# -- packages an assignment needs in the kernel's environment ------------------------------------
@functools.lru_cache(maxsize=64)
def missing_modules(modules: tuple[str, ...], python: str) -> tuple[str, ...]:
    """Which of ``modules`` the interpreter ``python`` cannot import (found, not imported:
    nothing heavy such as torch is loaded). Asked in a subprocess of that interpreter, with the
    kernel's isolation from user site-packages and ``PYTHONPATH``."""
    if not modules:
        return ()
    probe = ("import importlib.util, json, sys\n"
             "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))")
    from mlgrade.reaping import patience

    argv = [python, "-I", "-c", probe, *modules]
    try:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:  # a busy machine, not a missing package: once more
            done = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=patience(4 * PROBE_TIMEOUT_S))
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return modules  # an interpreter that cannot answer cannot run the month either
    return tuple(m for m in modules if m in found)


def has_nvidia_gpu() -> bool:
    """Whether this machine shows an NVIDIA driver (a CUDA torch build could use it)."""
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


def install_hint(assignment: Assignment, python: str | None = None, *,
                 gpu: bool | None = None) -> str:
    """The command that installs what ``assignment`` needs. For torch on Linux without an
    NVIDIA GPU, the CPU-only build first (PyPI's default Linux torch is the CUDA build, with
    gigabytes of nvidia packages no CPU uses); with a GPU, or elsewhere, the default."""
    pip = "pip" if python in (None, sys.executable) else f"{python} -m pip"
    if assignment.extra:
        command = f'{pip} install "mlgrade[{assignment.extra}]"'
    else:
        command = f"{pip} install {' '.join(assignment.requires)}"
    if "torch" in assignment.requires and sys.platform.startswith("linux"):
        gpu = has_nvidia_gpu() if gpu is None else gpu
        cpu = f"{command} --extra-index-url {TORCH_CPU_INDEX}"
        if gpu:
            command += f" (or the CPU-only torch, a much smaller download: {cpu})"
        else:
            command = (f"{cpu} (the CPU-only torch: this machine has no NVIDIA GPU, and the "
                       "default Linux torch brings gigabytes of CUDA packages)")
    return command


def missing_requirements_note(assignment: Assignment) -> str | None:
    """One line for ``start``: what the kernel still needs before this month can be checked,
    with the install command (None when nothing is missing)."""
    if not assignment.requires:
        return None
    python = kernel_python()
    missing = missing_modules(assignment.requires, python)
    if not missing:
        return None
    return (f"note: {assignment.name} needs {', '.join(missing)}, not installed yet: "
            f"{install_hint(assignment, python)}")


def require_packages(assignment: Assignment, python: str | None = None) -> None:
    """Refuse ``assignment`` before any cell runs when the kernel's interpreter (``python``,
    default :func:`mlgrade.limits.kernel_python`) lacks a package it declares."""
    if not assignment.requires:
        return
    if python is None:
        python = kernel_python()
    missing = missing_modules(assignment.requires, python)
    if missing:
        where = "" if python == sys.executable else f" ({python}, MLGRADE_KERNEL_PYTHON)"
        raise MissingPackagesError(
            f"{assignment.name} needs {', '.join(missing)}, missing from the kernel's "
            f"environment{where}; nothing was run. Install: {install_hint(assignment, python)}. "
            "`mlgrade doctor` shows what every month needs.")
