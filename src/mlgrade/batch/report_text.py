"""``mlgrade report``'s text: one assignment's distribution, pass rates, the mistakes the group
made, problems, late work, adjustments, copies and the slowest submissions, as rich tables
(learner-written text is never read as markup)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlgrade.batch.report import AssignmentReport, bin_label, test_label
from mlgrade.render.common import fmt_points

MAX_NAMES = 6  # learners named per mistake; the rest are counted

HIST_BAR = 40  # characters of the longest bar of the text histogram


def _table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    return table


def print_report(out: Console, rep: AssignmentReport) -> None:
    """One assignment's text report (learner-written text is never read as markup)."""
    out.print(Text.assemble((rep.assignment, "bold"), f": {rep.title}"), soft_wrap=True)
    out.print(f"{rep.submissions} submissions, {rep.graded} graded, {rep.errored} errored, "
              f"{rep.full_marks} full marks; mean {rep.mean:.2f}, median "
              f"{fmt_points(rep.median)}, range {fmt_points(rep.lowest)}-"
              f"{fmt_points(rep.highest)} (out of {fmt_points(rep.max_score)})", markup=False, soft_wrap=True)
    if rep.due:
        penalty = (f", {fmt_points(rep.late_penalty)} point(s) off per day late"
                   if rep.late_penalty else ", no late penalty")
        out.print(f"due {rep.due}{penalty}; {len(rep.late)} late", markup=False, soft_wrap=True)
    if rep.seed is not None:
        out.print(f"seed {rep.seed} (reproduce one grade: mlgrade check {rep.assignment} "
                  f"NOTEBOOK --seed {rep.seed})", markup=False, soft_wrap=True)
    # only the scores (bins) someone has: a 40-point assignment is not 40 rows of zeros
    hist = _table("score distribution (scores that occur)", "score", "learners", "",
                  right=("learners",))
    most = max((n for _, _, n in rep.histogram), default=0)
    for lo, hi, n in rep.histogram:
        if not n:
            continue
        label = bin_label(lo, hi) + (" (full marks)" if lo == hi and rep.max_score else "")
        hist.add_row(label, str(n), "#" * max(1, round(n * min(1.0, HIST_BAR / most))))
    out.print(hist)
    tests = _table("pass rate per test, hardest first", "question", "test", "points", "passed",
                   "rate", right=("points", "passed", "rate"))
    for t in rep.tests:
        tests.add_row(Text(t.question or ""), Text(test_label(t).split(" · ", 1)[-1]),
                      fmt_points(t.points), f"{t.passed}/{t.total}", f"{100 * t.rate:.0f}%")
    out.print(tests)
    if rep.mistakes:
        mistakes = _table("mistakes the group made (failures grouped by hint)", "question",
                          "test", "learners", "hint", "who", right=("learners",))
        for m in rep.mistakes:
            who = ", ".join(m.learners[:MAX_NAMES]) + (
                f" and {len(m.learners) - MAX_NAMES} more" if len(m.learners) > MAX_NAMES else "")
            mistakes.add_row(Text(m.question or ""), Text(m.title), str(len(m.learners)),
                             Text(m.hint), Text(who))
        out.print(mistakes)
    if rep.problems:
        probs = _table("errored or timed out", "learner", "status", "problem", "cell and reason")
        for p in rep.problems:
            probs.add_row(Text(p.learner), p.status, p.problem or "", Text(p.reason))
        out.print(probs)
    if rep.late:
        late = _table("late", "learner", "submitted", "from", "days", "penalty",
                      right=("days", "penalty"))
        for item in rep.late:
            late.add_row(Text(item.learner), item.submitted_at, item.submitted_from,
                         str(item.days), fmt_points(item.penalty))
        out.print(late)
    if rep.adjustments:
        adj = _table("adjustments", "learner", "test", "points", "score", "reason", "by", "when",
                     right=("points",))
        for a in rep.adjustments:
            score = (f"{fmt_points(a.original)} -> {fmt_points(a.adjusted)}" if a.applied
                     else "not applied (resubmitted since)")
            adj.add_row(Text(a.learner), Text(a.target), fmt_points(a.points), score,
                        Text(a.reason), Text(a.made_by), a.made_at)
        out.print(adj)
    if rep.copies:
        copies = _table("possibly copied (never changes a score)", "learner", "learner",
                        "similarity", "kind", right=("similarity",))
        for c in rep.copies:
            copies.add_row(Text(c.learner_a), Text(c.learner_b), f"{100 * c.similarity:.0f}%",
                           c.kind)
        out.print(copies)
    if rep.ignored:
        ignored = _table("folders with several notebooks", "learner", "graded", "ignored")
        for i in rep.ignored:
            ignored.add_row(Text(i.learner), Text(i.graded), Text(", ".join(i.ignored)))
        out.print(ignored)
    slow = _table("slowest submissions", "learner", "seconds", right=("seconds",))
    for who, secs in rep.slowest:
        slow.add_row(Text(who), f"{secs:.1f}")
    out.print(slow)
