"""Which assignment and which questions a check is about (``mlgrade.check`` and ``--question``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mlgrade.assignments import Assignment, get_assignment, list_assignments
from mlgrade.errors import UsageError
from mlgrade.selfcheck.detect import recognise


def question_id(raw: str) -> str:
    """``"Q3"``, ``"q3"`` and ``"3"`` all name question ``q3``."""
    text = str(raw).strip().lower()
    return f"q{text}" if text.isdigit() else text


def choose_questions(assignment: Assignment, raw: Iterable[str] | str | None) -> tuple[str, ...] | None:
    """The assignment's question ids named by ``raw`` (``None``: every question); an unknown id
    is a one-line usage error listing the valid ones."""
    if raw is None:
        return None
    items = [raw] if isinstance(raw, str) else list(raw)
    if not items:
        return None
    known = [q.id for q in assignment.questions]
    chosen: list[str] = []
    for item in items:
        qid = question_id(item)
        if qid not in known:
            listing = ", ".join(known) if known else "none"
            raise UsageError(f"{assignment.name} has no question {item!r} (its questions: {listing}).")
        if qid not in chosen:
            chosen.append(qid)
    return tuple(chosen)


def choose_assignment(root: Path, name: str | None, hint: str | None, names: set[str]) -> Assignment:
    """The assignment named, else the one whose starter's names the kernel defines, else the
    one the notebook's file name says."""
    if name:
        return get_assignment(root, name)
    every = list_assignments(root)
    found = recognise(names, every)
    if found is None and hint:
        found = next((a for a in every if a.name == Path(hint).stem), None)
    if found is None:
        raise UsageError("could not tell which assignment this notebook is (run its cells first, "
                         "or name it: mlgrade.check(\"q1\", assignment=\"month2\")).")
    return found
