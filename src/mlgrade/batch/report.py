"""Report stage: what a lead needs to see about one assignment across the group.

Score distribution (integer bins, of the scores that count: after adjustments and any late
penalty), per-test pass rates from hardest to easiest with question ids (what to re-teach), the
mistakes the group made (each test's failures grouped by the hint the learners got), the
submissions that errored or timed out with the cell and reason, late submissions, the lead's
adjustments, copied-submission flags, learner folders with ignored notebooks, and the slowest
submissions. The PNG (``--plot``) and the HTML dashboard (:mod:`mlgrade.batch.dashboard`) draw
from the same :class:`AssignmentReport`.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlgrade.batch.gradebook import Gradebook, TestRow
from mlgrade.batch.marks import Mark, marks
from mlgrade.batch.similarity import Pair, copied_pairs
from mlgrade.batch.workers import problem_detail
from mlgrade.errors import UsageError

MAX_BINS = 20  # integer-wide bins, widened (2, 3, ... points) past this many


@dataclass(frozen=True)
class TestRate:
    """How many learners passed one grader test."""

    __test__ = False  # not a pytest test class

    test_id: str
    title: str
    question: str | None
    points: float
    passed: int
    total: int

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass(frozen=True)
class Mistake:
    """The learners who failed one test with the same hint: one mistake the group made."""

    test_id: str
    title: str
    question: str | None
    hint: str  # the hint as most of them got it
    learners: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """A submission that errored or timed out, with the cell and reason."""

    learner: str
    status: str
    problem: str | None
    reason: str


@dataclass(frozen=True)
class Late:
    """A submission handed in after the due date."""

    learner: str
    submitted_at: str
    submitted_from: str
    days: int
    penalty: float


@dataclass(frozen=True)
class Adjusted:
    """One applied (or stale) adjustment, as the report lists it."""

    learner: str
    target: str  # a test id, or "total"
    points: float
    original: float  # the learner's score before adjustments
    adjusted: float  # and after
    reason: str
    made_by: str
    made_at: str
    applied: bool  # False: made for an earlier submission, or a test the graders dropped


@dataclass(frozen=True)
class Ignored:
    """A learner folder with several notebooks: the one graded and the ones ignored."""

    learner: str
    graded: str
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class AssignmentReport:
    """Everything ``mlgrade report`` says about one assignment."""

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
    histogram: tuple[tuple[float, float, int], ...]  # (from, to, count); see histogram()
    tests: tuple[TestRate, ...]  # hardest first
    problems: tuple[Problem, ...]
    slowest: tuple[tuple[str, float], ...]  # (learner, seconds), slowest first
    due: str | None
    late_penalty: float
    late: tuple[Late, ...]
    adjustments: tuple[Adjusted, ...]
    copies: tuple[Pair, ...]
    ignored: tuple[Ignored, ...]
    marks: tuple[Mark, ...]
    seed: int | None = None  # shown only when asked (--show-seed)
    mistakes: tuple[Mistake, ...] = ()  # by test, hardest first; the biggest group first

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tests"] = [{**asdict(t), "pass_rate": round(t.rate, 4)} for t in self.tests]
        data["histogram"] = [{"from": lo, "to": hi, "count": n} for lo, hi, n in self.histogram]
        data["slowest"] = [{"learner": who, "duration_s": s} for who, s in self.slowest]
        data["marks"] = [{"learner": m.learner, "score": m.final, "max_score": m.max_score,
                          "percent": m.percent, "status": m.status, "original": m.original,
                          "adjusted": m.is_adjusted, "late": m.late.late,
                          "submitted_at": m.submitted_at} for m in self.marks]
        if self.seed is None:
            del data["seed"]
        return data


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def mistake_key(hint: str) -> str:
    """What makes two hints the same mistake: the text with its numbers masked (a learner's
    own value, 0.41 or 0.38, does not make another mistake) and spacing ignored."""
    return " ".join(_NUMBER.sub("#", hint).split()).casefold()


def group_mistakes(rows: list[TestRow], order: list[str]) -> list[Mistake]:
    """Failed tests grouped by hint: per test (in ``order``, hardest first), the learners who
    got the same hint, the biggest group first."""
    groups: dict[tuple[str, str], list[TestRow]] = defaultdict(list)
    for row in rows:
        if row.status != "passed":
            groups[(row.test_id, mistake_key(row.feedback or "(no hint)"))].append(row)
    rank = {tid: i for i, tid in enumerate(order)}
    out = []
    for (tid, _key), members in groups.items():
        hint = Counter(r.feedback or "(no hint)" for r in members).most_common(1)[0][0]
        who = tuple(sorted({r.learner for r in members}, key=natural_key))
        out.append(Mistake(tid, members[0].title, members[0].question, hint, who))
    out.sort(key=lambda m: (rank.get(m.test_id, len(rank)), -len(m.learners), m.hint))
    return out


def bin_width(top: float) -> int:
    """Whole points per bin: 1 up to MAX_BINS points, wider beyond."""
    return max(1, math.ceil(top / MAX_BINS))


def histogram(scores: list[float], top: float) -> tuple[tuple[float, float, int], ...]:
    """Integer bins ``[lo, lo + width)`` up to the maximum, which gets a bin of its own
    (``(top, top, n)``: full marks) so a perfect score is always visible and labelled."""
    if top <= 0:
        return ((0.0, 0.0, len(scores)),)
    width = bin_width(top)
    edges = list(range(0, math.ceil(top), width))
    counts = [0] * (len(edges) + 1)
    for s in scores:
        if s >= top:
            counts[-1] += 1
        else:
            counts[min(len(edges) - 1, max(0, int(s // width)))] += 1
    bins = [(float(lo), float(min(lo + width, top)), counts[i]) for i, lo in enumerate(edges)]
    return (*bins, (float(top), float(top), counts[-1]))


def bar_position(bins: tuple[tuple[float, float, int], ...], top: float, value: float) -> float:
    """Where a score (a mean, a median) sits on the histogram, in bars: bar ``i`` spans
    ``[i, i + 1)``. Each whole score is at the middle of its own part of its bar (a one-point
    bin's score at the bar's middle), values between scores in between, full marks at the middle
    of the full-marks bar."""
    if value >= top or len(bins) < 2:
        return len(bins) - 0.5
    regular = bins[:-1]
    for i, (lo, hi, _) in enumerate(regular):
        if value < hi or i == len(regular) - 1:
            scores = max(1, math.ceil(hi) - math.floor(lo))  # whole scores this bar stands for
            return i + (max(value, 0.0) - lo + 0.5) / scores
    raise AssertionError("unreachable: the last regular bin takes every value below top")


def bin_label(lo: float, hi: float) -> str:
    """``"15"`` for the full-marks bin and one-point bins, ``"10-11"`` for wider ones."""
    if lo == hi or hi - lo <= 1:
        return f"{lo:g}"
    return f"{lo:g}-{math.ceil(hi) - 1:g}"


def natural_key(name: str) -> tuple[Any, ...]:
    """month2 before month10."""
    return tuple(int(p) if p.isdigit() else p.casefold() for p in re.split(r"(\d+)", name))


def build_reports(gradebook: Gradebook, assignment: str | None = None, slowest: int = 5,
                  show_seed: bool = False) -> list[AssignmentReport]:
    """One report per assignment in the gradebook (or just ``assignment``)."""
    names = sorted(gradebook.assignments(), key=natural_key)
    if assignment is not None:
        if assignment not in names:
            known = ", ".join(names) or "none yet"
            raise UsageError(f"the gradebook {gradebook.path} has no submissions for "
                             f"{assignment!r} (it has: {known}). Run `mlgrade grade "
                             f"{assignment} FOLDER` first.")
        names = [assignment]
    seeds = gradebook.seeds() if show_seed else {}
    return [_one(gradebook, name, slowest, seeds) for name in names]


def _adjusted_rows(all_marks: list[Mark]) -> list[Adjusted]:
    rows = []
    for m in all_marks:
        for adj, applied in [(a, True) for a in m.adjustments] + [(a, False) for a in m.stale]:
            rows.append(Adjusted(m.learner, adj.test_id or "total", adj.points, m.original,
                                 m.adjusted, adj.reason, adj.made_by, adj.made_at, applied))
    return rows


def _one(gradebook: Gradebook, name: str, slowest: int, seeds: dict[str, int]) -> AssignmentReport:
    subs = gradebook.submissions(name)
    all_marks = marks(gradebook, name)
    scores = [m.final for m in all_marks]
    top = max((s.max_score for s in subs), default=0.0)
    meta: dict[str, tuple[str, str | None, float]] = {}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = gradebook.test_rows(name)
    for row in rows:
        meta.setdefault(row.test_id, (row.title, row.question, row.points))
        counts[row.test_id][0] += row.status == "passed"
        counts[row.test_id][1] += 1
    tests = [TestRate(tid, title, question, pts, *counts[tid])
             for tid, (title, question, pts) in meta.items()]
    tests.sort(key=lambda t: (t.rate, -t.points))
    problems = [Problem(s.learner, s.status, s.problem,
                        s.reason or problem_detail(s.result, s.problem))
                for s in subs if s.status == "errored" or s.problem]
    by_time = sorted(subs, key=lambda s: -s.duration_s)[:slowest]
    graded = [m for m in all_marks if m.status == "graded"]
    due = gradebook.due(name)
    late = [Late(m.learner, m.submitted_at or "", m.submitted_from or "", m.late.days,
                 m.late.penalty) for m in all_marks if m.late.late]
    copies = copied_pairs([(s.learner, s.content_hash, s.code_tokens) for s in subs])
    ignored = [Ignored(s.learner, s.source, s.ignored) for s in subs if s.ignored]
    return AssignmentReport(
        assignment=name, title=gradebook.assignment_title(name) or name,
        submissions=len(subs), graded=len(graded), errored=len(subs) - len(graded),
        full_marks=sum(1 for m in graded if m.final >= m.max_score > 0),
        max_score=top, mean=round(statistics.fmean(scores), 4) if scores else 0.0,
        median=float(statistics.median(scores)) if scores else 0.0,
        lowest=min(scores, default=0.0), highest=max(scores, default=0.0),
        histogram=histogram(scores, top), tests=tuple(tests), problems=tuple(problems),
        slowest=tuple((s.learner, round(s.duration_s, 3)) for s in by_time),
        due=due.due, late_penalty=due.late_penalty, late=tuple(late),
        adjustments=tuple(_adjusted_rows(all_marks)), copies=tuple(copies),
        ignored=tuple(ignored), marks=tuple(all_marks), seed=seeds.get(name),
        mistakes=tuple(group_mistakes(rows, [t.test_id for t in tests])))


def test_label(t: TestRate) -> str:
    """``q2 · title`` (the question id first, as the notebook numbers it)."""
    title = t.title.replace("`", "")  # Markdown code marks, which a chart shows literally
    return f"{t.question} · {title}" if t.question else title


test_label.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def plot(reports: list[AssignmentReport], dest: Path) -> Path:
    """A PNG (or SVG/PDF, by suffix): for each assignment, the score histogram with mean and
    median marked, and per-test pass rates with question ids, hardest on top. Returns the path
    written, which is ``dest`` exactly."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wrap = 48
    rows = max(1, len(reports))
    heights = []
    for r in reports:
        lines = sum(len(textwrap.wrap(test_label(t), wrap)) or 1 for t in r.tests)
        heights.append(max(3.5, 0.22 * lines + 0.3 * len(r.tests) + 1.6))
    fig, axes = plt.subplots(rows, 2, figsize=(14, sum(heights) or 3.5), squeeze=False,
                             gridspec_kw={"height_ratios": heights or [1],
                                          "width_ratios": [1, 1.35]})
    for (left, right), rep in zip(axes, reports, strict=False):
        xs = list(range(len(rep.histogram)))
        left.bar(xs, [n for _, _, n in rep.histogram], width=0.85, color="#4C72B0")
        left.set_xticks(xs, [bin_label(lo, hi) for lo, hi, _ in rep.histogram], fontsize=8)
        width = bin_width(rep.max_score)

        def pos(value: float, rep: AssignmentReport = rep) -> float:
            # matplotlib centres bar i on x = i: it spans [i - 0.5, i + 0.5)
            return bar_position(rep.histogram, rep.max_score, value) - 0.5

        left.axvline(pos(rep.mean), color="#C44E52", linestyle="--",
                     label=f"mean {rep.mean:.2f}")
        left.axvline(pos(rep.median), color="#55A868", linestyle=":", linewidth=2,
                     label=f"median {rep.median:g}")
        left.legend(fontsize=8, loc="upper left")
        left.set_title(f"{rep.assignment}: scores ({rep.submissions} submissions)", fontsize=10)
        left.set_xlabel(f"score (bins of {width} point{'s' if width > 1 else ''}; "
                        f"last bin: full marks, {rep.max_score:g})")
        left.set_ylabel("learners")
        left.yaxis.get_major_locator().set_params(integer=True)
        labels = ["\n".join(textwrap.wrap(test_label(t), wrap)) for t in rep.tests]
        ys = range(len(rep.tests))
        bars = right.barh(ys, [100 * t.rate for t in rep.tests], color="#DD8452")
        texts = [f"{100 * t.rate:.0f}% ({t.passed}/{t.total})" for t in rep.tests]
        for bar, text, t in zip(bars, texts, rep.tests, strict=True):
            inside = t.rate > 0.6  # long bars carry their label inside, so 100% stays in frame
            right.text(bar.get_width() - 1 if inside else bar.get_width() + 1,
                       bar.get_y() + bar.get_height() / 2, text, va="center",
                       ha="right" if inside else "left", fontsize=8,
                       color="white" if inside else "black")
        right.set_yticks(list(ys), labels, fontsize=8)
        right.invert_yaxis()  # hardest on top
        right.set_xlim(0, 100)
        right.set_xlabel("learners passing (%)")
        right.set_title(f"{rep.assignment}: pass rate per test, hardest first", fontsize=10)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fmt = dest.suffix.lower().lstrip(".")
    fig.savefig(dest, dpi=110, format=fmt if fmt in ("png", "svg", "pdf") else "png")
    plt.close(fig)
    return dest
