"""The file-edit form of ``mutants.toml`` for repository assignments.

A notebook's mutants replace cells; a repository's change files. Each ``[[mutant]]`` (a
realistic wrong repository: ``name``, ``fails``, optional ``kind`` and ``feedback``) and each
``[[alternative]]`` (a correct repository written differently: ``name``) holds edits of the
reference repository::

    [[mutant]]
    name = "health-without-version"
    fails = ["test_health_reports_version"]
    feedback = { test_health_reports_version = "model_version" }
    [[mutant.edit]]
    path = "churn_api/app.py"
    old = '"model_loaded": model is not None, "model_version": version}'
    new = '"model_loaded": model is not None}'

An edit has ``path`` (relative, inside the repository) and one of: ``old`` and ``new`` (``old``
must occur exactly once in the file), ``source`` (the whole file, created if missing) or
``delete = true``. :func:`mutated_repository` writes the edited copy.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlgrade._compat import tomllib
from mlgrade.errors import AssignmentInvalidError


@dataclass(frozen=True)
class FileEdit:
    """One change to one file of the reference repository."""

    path: str
    old: str | None = None
    new: str | None = None
    source: str | None = None
    delete: bool = False


@dataclass(frozen=True)
class RepoMutant:
    """A realistic wrong repository: it must fail exactly ``fails``."""

    name: str
    fails: tuple[str, ...]
    edits: tuple[FileEdit, ...]
    kind: str = ""
    feedback: tuple[tuple[str, str], ...] = ()
    violates: tuple[str, ...] = ()  # ids of the instructions it breaks


@dataclass(frozen=True)
class RepoAlternative:
    """A correct repository written differently: it must earn full marks."""

    name: str
    edits: tuple[FileEdit, ...]


@dataclass(frozen=True)
class RepoCases:
    mutants: tuple[RepoMutant, ...]
    alternatives: tuple[RepoAlternative, ...]


def _edit(where: str, raw: Any) -> FileEdit:
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
        raise AssignmentInvalidError(f"{where}: every edit needs a path.")
    path = raw["path"]
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or ".." in parts:
        raise AssignmentInvalidError(f"{where}: edit path {path!r} must stay inside the repository.")
    forms = [("old" in raw and "new" in raw), "source" in raw, bool(raw.get("delete"))]
    if sum(forms) != 1:
        raise AssignmentInvalidError(f"{where}: edit of {path} needs exactly one of old+new, "
                                     "source or delete = true.")
    return FileEdit(path=path, old=raw.get("old"), new=raw.get("new"), source=raw.get("source"),
                    delete=bool(raw.get("delete")))


def load_repo_mutants(graders: Path) -> RepoCases:
    """The mutants and alternatives of ``graders/mutants.toml`` (none when it is missing)."""
    path = graders / "mutants.toml"
    if not path.is_file():
        return RepoCases((), ())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AssignmentInvalidError(f"{path} is not valid TOML ({exc}). Fix the file.") from None
    mutants, alternatives = [], []
    for raw in data.get("mutant", []):
        where = f"{path} mutant {raw.get('name')!r}"
        fails = raw.get("fails")
        if not isinstance(raw.get("name"), str) or not isinstance(fails, list) or not fails:
            raise AssignmentInvalidError(f"{where}: needs a name and a non-empty fails list.")
        mutants.append(RepoMutant(
            name=raw["name"], fails=tuple(str(f) for f in fails), kind=str(raw.get("kind", "")),
            feedback=tuple((str(k), str(v)) for k, v in raw.get("feedback", {}).items()),
            edits=tuple(_edit(where, e) for e in raw.get("edit", [])),
            violates=_violates(where, raw.get("violates", []))))
    for raw in data.get("alternative", []):
        where = f"{path} alternative {raw.get('name')!r}"
        if not isinstance(raw.get("name"), str):
            raise AssignmentInvalidError(f"{where}: needs a name.")
        alternatives.append(RepoAlternative(raw["name"], tuple(_edit(where, e) for e in raw.get("edit", []))))
    return RepoCases(tuple(mutants), tuple(alternatives))


def _violates(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AssignmentInvalidError(f"{where}: `violates` must be a list of instruction ids.")
    return tuple(value)


def mutated_repository(reference: Path, edits: tuple[FileEdit, ...], dest: Path) -> Path:
    """A copy of ``reference`` at ``dest`` (a new folder) with ``edits`` applied."""
    shutil.copytree(reference, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for edit in edits:
        target = dest.joinpath(*PurePosixPath(edit.path).parts)
        if edit.delete:
            target.unlink()
        elif edit.source is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(edit.source.lstrip("\n"), encoding="utf-8")
        else:
            text = target.read_text(encoding="utf-8")
            if text.count(edit.old or "") != 1 or not edit.old:
                raise AssignmentInvalidError(
                    f"the edit of {edit.path} expects its `old` text exactly once in "
                    f"{reference / edit.path}; it occurs {text.count(edit.old or '')} times. "
                    "Fix mutants.toml.")
            target.write_text(text.replace(edit.old, edit.new or ""), encoding="utf-8")
    return dest


__all__ = ["FileEdit", "RepoAlternative", "RepoCases", "RepoMutant", "load_repo_mutants",
           "mutated_repository"]
