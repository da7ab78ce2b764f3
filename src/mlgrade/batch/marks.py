"""Marks: a recorded submission's score once the lead's adjustments and any late penalty apply.

The grader's score is never rewritten: a mark is computed from it each time, so undoing an
adjustment or changing a due date needs no regrade. Order: per-test adjustments set that test's
points, then the late penalty (if one is configured) comes off; a total adjustment sets the
score that counts, penalty included. Adjustments made for an earlier submission (the learner
handed in new bytes since) do not apply; they are listed as ``stale``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgrade.batch.due import Lateness, lateness
from mlgrade.batch.gradebook import Adjustment, Due, Gradebook, Recorded


@dataclass(frozen=True)
class Mark:
    """One learner's standing on one assignment."""

    learner: str
    assignment: str
    original: float  # what the graders gave
    adjusted: float  # after the lead's adjustments
    final: float  # after the late penalty: the score that counts
    max_score: float
    status: str
    late: Lateness
    submitted_at: str | None
    submitted_from: str | None
    adjustments: tuple[Adjustment, ...]  # applied, oldest first
    stale: tuple[Adjustment, ...]  # made for an earlier submission: not applied
    problem: str | None = None  # what went wrong (timeout, kernel_died, ...), as the report says

    @property
    def outcome(self) -> str:
        """What happened, in one word: the problem when there was one (``timeout``,
        ``kernel_died``, ``worker_timeout``, ``errored``, ...), else the status (``graded``)."""
        return self.problem or self.status

    @property
    def is_adjusted(self) -> bool:
        return bool(self.adjustments)

    @property
    def percent(self) -> float:
        return round(100 * self.final / self.max_score, 1) if self.max_score else 0.0


def mark_of(sub: Recorded, adjustments: list[Adjustment], due: Due) -> Mark:
    """Apply ``adjustments`` (this learner's, this assignment's, oldest first) and ``due``."""
    mine = [a for a in adjustments if a.learner == sub.learner and a.assignment == sub.assignment]
    applied = [a for a in mine if a.content_hash == sub.content_hash]
    stale = tuple(a for a in mine if a.content_hash != sub.content_hash)
    earned = {str(t["id"]): float(t["earned"]) for t in sub.result.get("tests", ())}
    possible = {str(t["id"]): float(t["points"]) for t in sub.result.get("tests", ())}
    total: float | None = None
    used = []
    for adj in applied:
        if adj.test_id is None:
            total = adj.points
            used.append(adj)
        elif adj.test_id in earned:
            earned[adj.test_id] = min(max(adj.points, 0.0), possible[adj.test_id])
            used.append(adj)
        else:  # the graders no longer have this test
            stale += (adj,)
    adjusted = sub.score
    if used:
        adjusted = round(sum(earned.values()), 6) if total is None else total
        adjusted = min(max(adjusted, 0.0), sub.max_score)
    # a total set by the lead is the score that counts: no penalty on top (still flagged late)
    late = lateness(sub.submitted_at, due.due, 0.0 if total is not None else due.late_penalty,
                    adjusted)
    return Mark(learner=sub.learner, assignment=sub.assignment, original=sub.score,
                adjusted=adjusted, final=round(adjusted - late.penalty, 6),
                max_score=sub.max_score, status=sub.status, late=late,
                submitted_at=sub.submitted_at, submitted_from=sub.submitted_from,
                adjustments=tuple(used), stale=stale, problem=sub.problem)


def marks(gradebook: Gradebook, assignment: str | None = None) -> list[Mark]:
    """Every recorded submission's mark (one assignment, or all), in report order."""
    adjustments = gradebook.adjustments(assignment)
    dues: dict[str, Due] = {}
    out = []
    for sub in gradebook.submissions(assignment):
        due = dues.setdefault(sub.assignment, gradebook.due(sub.assignment))
        out.append(mark_of(sub, adjustments, due))
    return out


def points_per_test(sub: Recorded, mark: Mark) -> dict[str, float]:
    """test id -> points that count after per-test adjustments."""
    earned = {str(t["id"]): float(t["earned"]) for t in sub.result.get("tests", ())}
    for adj in mark.adjustments:
        if adj.test_id is not None and adj.test_id in earned:
            earned[adj.test_id] = adj.points
    return earned


