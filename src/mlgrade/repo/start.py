"""``mlgrade start`` for a repository assignment: write the starter repository."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from mlgrade.assignments import Assignment
from mlgrade.errors import AssignmentInvalidError, UsageError


def start_repository(assignment: Assignment, target: Path, *, force: bool = False) -> list[str]:
    """Copy the starter repository to ``target``; the lines that tell the learner what next.

    An existing non-empty ``target`` is kept unless ``force`` (then the starter's files are
    written over it; other files stay)."""
    if not assignment.starter.is_dir():
        raise AssignmentInvalidError(f"{assignment.name}'s starter repository {assignment.starter} "
                                     "is missing or not a folder. Reinstall mlgrade.")
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
        raise UsageError(f"{target} already exists and is not empty; your work is kept. Use "
                         "--force to write the starter into it, or name another folder.")
    shutil.copytree(assignment.starter, target, dirs_exist_ok=True, symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__"))
    where = shlex.quote(str(target))
    return [f"wrote the starter repository {target}/",
            f"  work on it:   cd {where} && git init   (the TODOs in the code, README.md, "
            "Dockerfile, .dockerignore and .github/workflows/ci.yml are yours)",
            "  run its tests: python -m pytest",
            f"  grade it:     mlgrade check {assignment.name} {where}   (a folder, a git "
            "checkout or a .zip)"]


__all__ = ["start_repository"]
