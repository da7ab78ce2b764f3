"""Report stage: what a lead needs to see about one assignment across the group.

Score distribution, per-test pass rates from hardest to easiest (what to re-teach), the
submissions that errored or timed out with their reasons, and the slowest submissions.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlgrade.batch.gradebook import Gradebook
from mlgrade.batch.workers import problem_detail
from mlgrade.errors import UsageError

HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class TestRate:
    test_id: str
    title: str
    points: float
    passed: int
    total: int

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass(frozen=True)
class Problem:
    learner: str
    status: str
    problem: str | None
    reason: str


@dataclass(frozen=True)
class AssignmentReport:
    assignment: str
    title: str
    submissions: int
    graded: int
    errored: int
    full_marks: int
    max_score: float
    mean: float
    median: float
    lowest: float
    highest: float
    histogram: tuple[tuple[float, float, int], ...]  # (from, to, count); the last bin is closed
    tests: tuple[TestRate, ...]  # hardest first
    problems: tuple[Problem, ...]
    slowest: tuple[tuple[str, float], ...]  # (learner, seconds), slowest first

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tests"] = [{**asdict(t), "pass_rate": round(t.rate, 4)} for t in self.tests]
        data["histogram"] = [{"from": lo, "to": hi, "count": n} for lo, hi, n in self.histogram]
        data["slowest"] = [{"learner": who, "duration_s": s} for who, s in self.slowest]
        return data


def histogram(scores: list[float], top: float, bins: int = HISTOGRAM_BINS) -> tuple[
        tuple[float, float, int], ...]:
    if top <= 0:
        return ((0.0, 0.0, len(scores)),)
    width = top / bins
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, max(0, int(s / width)))] += 1
    return tuple((round(i * width, 6), round((i + 1) * width, 6), c) for i, c in enumerate(counts))


def build_reports(gradebook: Gradebook, assignment: str | None = None,
                  slowest: int = 5) -> list[AssignmentReport]:
    """One report per assignment in the gradebook (or just ``assignment``)."""
    names = gradebook.assignments()
    if assignment is not None:
        if assignment not in names:
            known = ", ".join(names) or "none yet"
            raise UsageError(f"the gradebook {gradebook.path} has no submissions for "
                             f"{assignment!r} (it has: {known}). Run `mlgrade grade "
                             f"{assignment} FOLDER` first.")
        names = [assignment]
    return [_one(gradebook, name, slowest) for name in names]


def _one(gradebook: Gradebook, name: str, slowest: int) -> AssignmentReport:
    subs = gradebook.submissions(name)
    scores = [s.score for s in subs]
    top = max((s.max_score for s in subs), default=0.0)
    rates: dict[str, list[Any]] = {}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in gradebook.test_rows(name):
        rates.setdefault(row.test_id, [row.title, row.points])
        counts[row.test_id][0] += row.status == "passed"
        counts[row.test_id][1] += 1
    tests = [TestRate(tid, title, pts, *counts[tid]) for tid, (title, pts) in rates.items()]
    tests.sort(key=lambda t: (t.rate, -t.points))
    problems = [Problem(s.learner, s.status, s.problem,
                        s.reason or problem_detail(s.result, s.problem))
                for s in subs if s.status == "errored" or s.problem]
    by_time = sorted(subs, key=lambda s: -s.duration_s)[:slowest]
    graded = [s for s in subs if s.status == "graded"]
    return AssignmentReport(
        assignment=name, title=gradebook.assignment_title(name) or name,
        submissions=len(subs), graded=len(graded), errored=len(subs) - len(graded),
        full_marks=sum(1 for s in graded if s.score >= s.max_score > 0),
        max_score=top, mean=round(statistics.fmean(scores), 4) if scores else 0.0,
        median=float(statistics.median(scores)) if scores else 0.0,
        lowest=min(scores, default=0.0), highest=max(scores, default=0.0),
        histogram=histogram(scores, top), tests=tuple(tests), problems=tuple(problems),
        slowest=tuple((s.learner, round(s.duration_s, 3)) for s in by_time))


def plot(reports: list[AssignmentReport], dest: Path) -> None:
    """A PNG per run: for each assignment, the score histogram and per-test pass rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len(reports))
    height = max(3.0, max((0.35 * len(r.tests) + 1.5 for r in reports), default=3.0))
    fig, axes = plt.subplots(rows, 2, figsize=(13, height * rows), squeeze=False)
    for (left, right), rep in zip(axes, reports, strict=False):
        widths = [hi - lo for lo, hi, _ in rep.histogram]
        left.bar([lo for lo, _, _ in rep.histogram], [n for _, _, n in rep.histogram],
                 width=widths, align="edge", color="#4C72B0", edgecolor="white")
        left.set_title(f"{rep.assignment}: scores ({rep.submissions} submissions)")
        left.set_xlabel(f"score (out of {rep.max_score:g})")
        left.set_ylabel("learners")
        left.yaxis.get_major_locator().set_params(integer=True)
        titles = [t.title if len(t.title) <= 45 else t.title[:44] + "…" for t in rep.tests]
        bars = right.barh(range(len(rep.tests)), [100 * t.rate for t in rep.tests],
                          color="#DD8452")
        right.bar_label(bars, labels=[f"{100 * t.rate:.0f}% ({t.passed}/{t.total})"
                                      for t in rep.tests], padding=3, fontsize=8)
        right.set_yticks(range(len(rep.tests)), titles, fontsize=8)
        right.invert_yaxis()  # hardest on top
        right.set_xlim(0, 115)  # room for the labels
        right.set_xlabel("learners passing (%)")
        right.set_title(f"{rep.assignment}: pass rate per test, hardest first")
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    plt.close(fig)
