"""Fairness metadata of an assignment: which tests observe which instruction, and the mutants
(realistic wrong solutions) and alternatives (correct solutions written differently) that
show the graders catch what the instructions rule out and accept what they allow.

Two TOML formats, specified in docs/graders.md ("Instructions and mutants"):

- ``[[instructions]]`` in ``assignment.toml``: id, question, text, tests, optional boundary,
  or ``advice = true`` (no tests: the starter says it is not graded);
- ``[[mutant]]`` / ``[[alternative]]`` in ``graders/<name>/mutants.toml``: a marker cell of
  the reference solution and its replacement source (or several, ``cells = [...]``), and for a
  mutant the exact set of tests that must fail and the instructions it ``violates``.

Everything here is data: loading never runs a notebook. A malformed file raises
:class:`~mlgrade.errors.AssignmentInvalidError` naming the file and the entry.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from mlgrade.errors import AssignmentInvalidError

if sys.version_info >= (3, 11):  # noqa: UP036 - mlgrade also runs on Python 3.10
    import tomllib
else:
    import tomli as tomllib

MUTANTS_FILE = "mutants.toml"


# which fairness pattern a mutant exercises (docs/graders.md)
KINDS = ("boundary", "shared-mistake", "unchecked-spec", "loose-threshold", "non-separating",
         "other")


@dataclass(frozen=True)
class Instruction:
    """One instruction of a starter notebook and the grader tests that observe it."""

    question: str
    text: str
    tests: tuple[str, ...]
    boundary: str | None = None
    id: str | None = None  # what a mutant's `violates` names
    advice: bool = False  # not graded: no tests, and the starter says so

    @property
    def label(self) -> str:
        return self.id or f"{self.question}: {self.text[:50]!r}"


@dataclass(frozen=True)
class Replacement:
    """Replace the first code cell containing ``cell`` (a marker) with ``source``."""

    cell: str
    source: str


@dataclass(frozen=True)
class Mutant:
    """A realistic wrong solution: the reference with cells replaced; ``fails`` exactly."""

    name: str
    kind: str  # one of KINDS
    replacements: tuple[Replacement, ...]
    fails: frozenset[str]
    feedback: tuple[tuple[str, str], ...] = ()  # (test id, text its feedback must contain)
    violates: tuple[str, ...] = ()  # ids of the instructions it breaks


@dataclass(frozen=True)
class Alternative:
    """A correct solution written differently: the reference with cells replaced."""

    name: str
    replacements: tuple[Replacement, ...]


@dataclass(frozen=True)
class MutantSet:
    """The contents of one ``mutants.toml`` (empty when the file does not exist)."""

    path: Path | None
    mutants: tuple[Mutant, ...] = ()
    alternatives: tuple[Alternative, ...] = field(default=())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AssignmentInvalidError(f"{path} cannot be read ({exc}). Fix the file, see "
                                     "docs/graders.md.") from None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AssignmentInvalidError(f"{where} must be a list of test names (strings).")
    return tuple(value)


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AssignmentInvalidError(f"{where} needs a non-empty string `{key}`.")
    return value


def load_instructions(assignment_toml: Path) -> tuple[Instruction, ...]:
    """The ``[[instructions]]`` of an ``assignment.toml`` (none declared: an empty tuple)."""
    raw = _read_toml(assignment_toml).get("instructions", [])
    if not isinstance(raw, list):
        raise AssignmentInvalidError(f"{assignment_toml}: `instructions` must be an array of "
                                     "tables ([[instructions]]).")
    out: list[Instruction] = []
    ids: set[str] = set()
    for i, entry in enumerate(raw, 1):
        where = f"{assignment_toml}: instruction {i}"
        if not isinstance(entry, dict):
            raise AssignmentInvalidError(f"{where} must be a table.")
        boundary = entry.get("boundary")
        if boundary is not None and not (isinstance(boundary, str) and boundary.strip()):
            raise AssignmentInvalidError(f"{where}: `boundary` must be a non-empty string.")
        unknown = set(entry) - {"id", "question", "text", "tests", "boundary", "advice"}
        if unknown:
            raise AssignmentInvalidError(f"{where} has unknown keys {sorted(unknown)}; allowed: "
                                         "id, question, text, tests, boundary, advice.")
        ident = entry.get("id")
        if ident is not None:
            ident = _text(entry, "id", where).strip()
            if ident in ids:
                raise AssignmentInvalidError(f"{where}: the id {ident!r} is used twice.")
            ids.add(ident)
        advice = entry.get("advice", False)
        if not isinstance(advice, bool):
            raise AssignmentInvalidError(f"{where}: `advice` must be true or false.")
        tests = _strings(entry.get("tests", []), f"{where}: `tests`")
        if advice and (tests or boundary):
            raise AssignmentInvalidError(f"{where} is advice (not graded), so it has no `tests` "
                                         "and no `boundary`; remove them or `advice`.")
        out.append(Instruction(question=_text(entry, "question", where),
                               text=_text(entry, "text", where), tests=tests,
                               boundary=boundary, id=ident, advice=advice))
    return tuple(out)


def _replacements(entry: dict[str, Any], where: str) -> tuple[Replacement, ...]:
    if "cells" in entry:
        if "cell" in entry or "source" in entry:
            raise AssignmentInvalidError(f"{where}: give either `cell`/`source` or `cells`, "
                                         "not both.")
        cells = entry["cells"]
        if not isinstance(cells, list) or not cells:
            raise AssignmentInvalidError(f"{where}: `cells` must be a non-empty array of "
                                         "{cell = ..., source = ...} tables.")
        out = []
        for c in cells:
            if not isinstance(c, dict):
                raise AssignmentInvalidError(f"{where}: each entry of `cells` must be a table.")
            out.append(Replacement(_text(c, "cell", where), _text(c, "source", where)))
        return tuple(out)
    return (Replacement(_text(entry, "cell", where), _text(entry, "source", where)),)


def load_mutants(graders: Path) -> MutantSet:
    """``graders/mutants.toml``, checked for shape (not run); absent: an empty set."""
    path = graders / MUTANTS_FILE
    if not path.is_file():
        return MutantSet(None)
    data = _read_toml(path)
    unknown = set(data) - {"mutant", "alternative"}
    if unknown:
        raise AssignmentInvalidError(f"{path} has unknown tables {sorted(unknown)}; allowed: "
                                     "[[mutant]], [[alternative]].")
    mutants: list[Mutant] = []
    alternatives: list[Alternative] = []
    seen: set[str] = set()
    for i, entry in enumerate(data.get("mutant", []), 1):
        where = f"{path}: mutant {entry.get('name', i) if isinstance(entry, dict) else i}"
        if not isinstance(entry, dict):
            raise AssignmentInvalidError(f"{where} must be a table.")
        name = _text(entry, "name", where)
        kind = _text(entry, "kind", where)
        if kind not in KINDS:
            raise AssignmentInvalidError(f"{where}: kind {kind!r} is not one of "
                                         f"{', '.join(KINDS)}.")
        fails = frozenset(_strings(entry.get("fails"), f"{where}: `fails`"))
        if not fails:
            raise AssignmentInvalidError(f"{where}: `fails` is empty; a mutant must lose points "
                                         "(a correct variant is an [[alternative]]).")
        feedback = entry.get("feedback", {})
        if not isinstance(feedback, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in feedback.items()):
            raise AssignmentInvalidError(f"{where}: `feedback` must map test names to text.")
        if not set(feedback) <= fails:
            raise AssignmentInvalidError(f"{where}: `feedback` names tests that are not in "
                                         "`fails`.")
        violates = entry.get("violates", [])
        if not isinstance(violates, list) or not all(isinstance(v, str) and v for v in violates):
            raise AssignmentInvalidError(f"{where}: `violates` must be a list of instruction "
                                         "ids (strings).")
        mutants.append(Mutant(name, kind, _replacements(entry, where), fails,
                              tuple(sorted(feedback.items())), tuple(violates)))
        if name in seen:
            raise AssignmentInvalidError(f"{where}: the name {name!r} is used twice.")
        seen.add(name)
    for i, entry in enumerate(data.get("alternative", []), 1):
        where = f"{path}: alternative {entry.get('name', i) if isinstance(entry, dict) else i}"
        if not isinstance(entry, dict):
            raise AssignmentInvalidError(f"{where} must be a table.")
        name = _text(entry, "name", where)
        if name in seen:
            raise AssignmentInvalidError(f"{where}: the name {name!r} is used twice.")
        seen.add(name)
        alternatives.append(Alternative(name, _replacements(entry, where)))
    return MutantSet(path, tuple(mutants), tuple(alternatives))


def apply_replacements(nb: NotebookNode, replacements: tuple[Replacement, ...]) -> NotebookNode:
    """A copy of ``nb`` with each replacement applied in order (to the first code cell that
    contains its marker); a marker that matches no cell raises ``AssignmentInvalidError``."""
    out = copy.deepcopy(nb)
    for rep in replacements:
        for cell in out.cells:
            if cell.cell_type == "code" and rep.cell in cell.source:
                cell.source = rep.source
                break
        else:
            raise AssignmentInvalidError(f"no code cell of the reference solution contains "
                                         f"{rep.cell!r}: fix the marker in {MUTANTS_FILE}.")
    return out


__all__ = ["KINDS", "MUTANTS_FILE", "Alternative", "Instruction", "Mutant", "MutantSet",
           "Replacement", "apply_replacements", "load_instructions", "load_mutants"]
