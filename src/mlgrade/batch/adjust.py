"""Manual adjustments: a lead accepts a late fix or a defensible alternative, with a reason.

An adjustment sets one test's points (``--test ID --points N``) or the assignment's score
(``--total N``); the graders' own result is never rewritten (see :mod:`mlgrade.batch.marks`).
"""

from __future__ import annotations

import getpass
import math
import shutil
import subprocess

from mlgrade.batch.gradebook import Gradebook
from mlgrade.batch.marks import marks
from mlgrade.errors import UsageError
from mlgrade.render.common import fmt_points


def author(by: str | None) -> str:
    """Who makes an adjustment: ``--by``, else git's ``user.name``, else the login name."""
    if by is not None and by.strip():
        return by.strip()
    git = shutil.which("git")
    if git is not None:
        try:
            name = subprocess.run([git, "config", "user.name"], capture_output=True, text=True,
                                  timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            name = ""
        if name:
            return name
    try:
        login = getpass.getuser().strip()  # $LOGNAME, $USER, ..., else the password database
    except (OSError, KeyError):
        login = ""
    if login:
        return login
    raise UsageError("cannot tell who makes this adjustment (no git user.name, no login name): "
                     "pass --by NAME, or set one with `git config --global user.name NAME`.")


def _test_id(tests: list[dict[str, object]], wanted: str) -> tuple[str, float]:
    """The test named by ``wanted``: its id, or a question id that names exactly one test."""
    by_id = {str(t["id"]): float(str(t["points"])) for t in tests}
    if wanted in by_id:
        return wanted, by_id[wanted]
    matches = [str(t["id"]) for t in tests if t.get("question") == wanted]
    if len(matches) == 1:
        return matches[0], by_id[matches[0]]
    listing = ", ".join(f"{t['id']} ({t.get('question') or '-'})" for t in tests) or "none"
    more = " names several tests; pass one id" if matches else " is not a test of this submission"
    raise UsageError(f"--test {wanted!r}{more}. Tests: {listing}.")


def _number(value: float, name: str, top: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= top:
        raise UsageError(f"{name} must be between 0 and {fmt_points(top)}, got {value:g}.")
    return value


def apply_adjustment(book: Gradebook, *, assignment: str, learner: str, test: str | None,
                     points: float | None, total: float | None, reason: str | None, by: str,
                     undo: bool) -> str:
    """Record (or undo) one adjustment; return the line to show the lead."""
    subs = {s.learner: s for s in book.submissions(assignment)}
    if learner not in subs:
        book.current_submission(learner, assignment)  # raises the usage error that lists the learners
    sub = subs[learner]
    tests = list(sub.result.get("tests", ()))
    test_id: str | None = None
    top = sub.max_score
    if test is not None:
        test_id, top = _test_id(tests, test)
    if undo:
        if points is not None or total is not None:
            raise UsageError("--undo takes no --points or --total.")
        gone = book.undo_adjustment(learner=learner, assignment=assignment, test_id=test_id,
                                    made_by=by)
        if gone is None:
            what = f"test {test_id}" if test_id else "the total"
            raise UsageError(f"no adjustment of {what} for {learner} on {assignment} to undo.")
        return f"{_now_score(book, assignment, learner)} (undid: {gone.reason})"
    if test is not None and (points is None or total is not None):
        raise UsageError("--test needs --points N (the points the test counts for).")
    if test is None and points is not None:
        raise UsageError("--points goes with --test; use --total N for the whole score.")
    if test is None and total is None:
        raise UsageError("say what to adjust: --test ID --points N, or --total N.")
    if not reason or not reason.strip():
        raise UsageError("--reason is required: the learner sees it in their feedback.")
    value = _number(points if points is not None else float(total or 0),
                    "--points" if test_id else "--total", top)
    book.adjust(learner=learner, assignment=assignment, test_id=test_id, points=value,
                reason=reason.strip(), made_by=by)
    return _now_score(book, assignment, learner)


def _now_score(book: Gradebook, assignment: str, learner: str) -> str:
    (mark,) = [m for m in marks(book, assignment) if m.learner == learner]
    changes = ", ".join(f"{a.test_id or 'total'} = {fmt_points(a.points)}"
                        for a in mark.adjustments) or "none"
    return (f"{learner} on {assignment}: {fmt_points(mark.adjusted)}/{fmt_points(mark.max_score)} "
            f"(graders gave {fmt_points(mark.original)}; adjustments: {changes})")
