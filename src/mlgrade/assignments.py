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
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mlgrade.errors import AssignmentInvalidError, UnknownAssignmentError

ENV_ASSIGNMENTS = "MLGRADE_ASSIGNMENTS"


@dataclass(frozen=True)
class Question:
    """One question of an assignment, as its metadata declares it."""

    id: str
    title: str
    points: float


@dataclass(frozen=True)
class Limits:
    """Time limits an assignment asks for (seconds); ``None`` means mlgrade's default."""

    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    call_timeout: float | None = None


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
