"""CLI commands for study-group leads: ``grade``, ``report``, ``export``, ``feedback``.

Thin wiring over :mod:`mlgrade.batch`: parse, call, print. Human output goes to stderr (progress,
summaries); ``report`` prints its tables to stdout, ``export`` its data to stdout.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mlgrade._compat import StrEnum
from mlgrade.batch.export import ExportFormat
from mlgrade.batch.feedback import FeedbackFormat
from mlgrade.batch.gradebook import DEFAULT_GRADEBOOK
from mlgrade.batch.runner import BatchObserver, Graded, Tally
from mlgrade.commands._common import assignments_root, err, handles_errors, say, sub_app
from mlgrade.render.common import fmt_points

app = sub_app()

GradebookOpt = Annotated[Path, typer.Option(
    "--gradebook", envvar="MLGRADE_GRADEBOOK",
    help="SQLite gradebook file (also MLGRADE_GRADEBOOK).")]




def _outcome_text(item: Graded) -> str:
    text = f"{fmt_points(item.score)}/{fmt_points(item.max_score)} {item.status}"
    return text + (f" ({item.problem})" if item.problem else "")


class PlainProgress(BatchObserver):
    """One quiet line per submission: for CI logs and pipes."""

    def recorded(self, item: Graded, tally: Tally) -> None:
        say(f"[{tally.done}/{tally.total}] {item.learner}: {_outcome_text(item)} "
                  f"in {item.duration_s:.1f} s")


class RichProgress(BatchObserver):
    """A live bar with count, ETA and pass/error counts."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(), TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]{task.fields[full]} full marks[/green] "
                       "[magenta]{task.fields[errored]} errored[/magenta]"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
            transient=False)
        self.task = self.progress.add_task("grading", total=0, full=0, errored=0)

    def started(self, total: int) -> None:
        self.progress.update(self.task, total=total)
        self.progress.start()

    def recorded(self, item: Graded, tally: Tally) -> None:
        self.progress.update(self.task, completed=tally.done, full=tally.full_marks,
                             errored=tally.errored)

    def stop(self) -> None:
        self.progress.stop()


def _summary(tally: Tally, unchanged: int, gradebook: Path) -> None:
    if err.is_terminal and tally.rows:
        table = Table(title="graded this run", title_justify="left")
        for col, justify in (("learner", "left"), ("score", "right"), ("status", "left"),
                             ("seconds", "right"), ("reason", "left")):
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for r in sorted(tally.rows, key=lambda r: r.learner.casefold()):
            table.add_row(r.learner, f"{fmt_points(r.score)}/{fmt_points(r.max_score)}",
                          r.status + (f" ({r.problem})" if r.problem else ""),
                          f"{r.duration_s:.1f}", (r.reason or "")[:120])
        err.print(table)
    rate = f", {60 * tally.done / tally.elapsed_s:.1f}/min" if tally.elapsed_s > 0 else ""
    say(f"graded {tally.done} submission(s) in {tally.elapsed_s:.1f} s{rate}: "
              f"{tally.full_marks} full marks, {tally.errored} errored; {unchanged} unchanged "
              f"(already in the gradebook). Gradebook: {gradebook}")


@app.command()
@handles_errors
def grade(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    submissions: Annotated[Path, typer.Argument(
        help="Folder of notebooks (alice.ipynb), folder per learner (alice/ASSIGNMENT.ipynb), "
        "or a .zip of either.")],
    gradebook: GradebookOpt = DEFAULT_GRADEBOOK,
    workers: Annotated[int | None, typer.Option(help="Submissions graded at once on this machine "
                                                "[default: number of cores].")] = None,
    regrade: Annotated[bool, typer.Option(help="Grade again even submissions that are unchanged "
                                          "since they were recorded.")] = False,
    scheduler: Annotated[str | None, typer.Option(
        help="Grade on a Dask cluster, e.g. tcp://HOST:8786 (needs mlgrade[cluster]).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the graders' random inputs.")] = None,
    cell_timeout: Annotated[float | None, typer.Option(help="Seconds per cell.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds for the whole "
                                                  "notebook.")] = None,
    call_timeout: Annotated[float | None, typer.Option(help="Seconds per grader call.")] = None,
    memory_mb: Annotated[int | None, typer.Option(
        help="Kernel memory limit in MiB (0: none).")] = None,
    isolation: Annotated[str | None, typer.Option(
        help="auto, namespaced or none (grading needs the namespaced sandbox unless "
        "`--isolation none` is given).")] = None,
    hard_timeout: Annotated[float | None, typer.Option(help="Seconds before a whole submission is "
                                                       "stopped and recorded as errored "
                                                       "[default: every limit together].")] = None,
) -> None:
    """Grade a folder of submissions in parallel into a SQLite gradebook (resumable).

    Exit code 0 once the batch has finished: submissions that errored or timed out are recorded
    with their reasons (see `mlgrade report`), not failures of the command.
    """
    from mlgrade.assignments import get_assignment
    from mlgrade.batch.gradebook import Gradebook
    from mlgrade.batch.runner import grade_batch, plan_batch
    from mlgrade.batch.submissions import discover
    from mlgrade.batch.workers import Backend, DaskBackend, LocalPool, _sandbox, cpu_count
    from mlgrade.config import resolve_settings
    from mlgrade.errors import UsageError

    a = get_assignment(assignments_root(), assignment)
    settings = resolve_settings(
        {"seed": seed, "cell_timeout": cell_timeout, "notebook_timeout": timeout,
         "call_timeout": call_timeout, "memory_mb": memory_mb, "isolation": isolation},
        a.limits)
    _sandbox(settings, 0)  # a sandbox this machine cannot provide fails here, once, clearly
    limit = hard_timeout if hard_timeout is not None else None
    if limit is not None and limit <= 0:
        raise UsageError(f"--hard-timeout must be a positive number of seconds, got {limit:g}.")
    from mlgrade.batch.workers import hard_timeout as default_limit

    limit = limit or default_limit(settings)
    backend: Backend = (DaskBackend(scheduler, limit) if scheduler
                        else LocalPool(cpu_count() if workers is None else workers, limit))
    with tempfile.TemporaryDirectory(prefix="mlgrade-input-") as unpacked:
        found = discover(submissions, a.name, Path(unpacked))
        for item in found.skipped:
            say(f"skipped {item.source}: {item.reason}")
        with Gradebook(gradebook) as book:
            plan = plan_batch(found, book, a, settings, regrade)
            say(f"{len(plan.todo)} to grade, {len(plan.up_to_date)} unchanged, "
                      f"{len(found.skipped)} skipped; {backend.description}")
            observer: BatchObserver
            if err.is_terminal:
                observer = RichProgress(err)
                try:
                    tally = grade_batch(plan, a, settings, backend, book, observer)
                finally:
                    observer.stop()
            else:
                observer = PlainProgress()
                tally = grade_batch(plan, a, settings, backend, book, observer)
    _summary(tally, len(plan.up_to_date), gradebook)


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
@handles_errors
def report(
    assignment: Annotated[str | None, typer.Argument(help="Assignment name [default: every "
                                                     "assignment in the gradebook].")] = None,
    gradebook: GradebookOpt = DEFAULT_GRADEBOOK,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="text tables or JSON.")]
    = ReportFormat.TEXT,
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG: score histogram and "
                                              "per-test pass rates.")] = None,
    slowest: Annotated[int, typer.Option(help="How many of the slowest submissions to list.")] = 5,
) -> None:
    """Where the group struggles: score distribution, per-test pass rates (hardest first),
    errored and timed-out submissions, slowest submissions."""
    import json

    from mlgrade.batch.gradebook import open_existing
    from mlgrade.batch.report import build_reports
    from mlgrade.batch.report import plot as write_plot

    with open_existing(gradebook) as book:
        reports = build_reports(book, assignment, slowest)
    if plot is not None:
        write_plot(reports, plot)
        say(f"wrote {plot}")
    if format is ReportFormat.JSON:
        sys.stdout.write(json.dumps([r.to_dict() for r in reports], indent=2) + "\n")
        return
    out = Console(highlight=False)
    for rep in reports:
        out.print(f"[bold]{rep.assignment}[/bold]: {rep.title}")
        out.print(f"{rep.submissions} submissions, {rep.graded} graded, {rep.errored} errored, "
                  f"{rep.full_marks} full marks; mean {rep.mean:.2f}, median "
                  f"{fmt_points(rep.median)}, range {fmt_points(rep.lowest)}-"
                  f"{fmt_points(rep.highest)} (out of {fmt_points(rep.max_score)})", markup=False)
        hist = Table(title="score distribution", title_justify="left")
        hist.add_column("score")
        hist.add_column("learners", justify="right")
        hist.add_column("")
        for i, (lo, hi, n) in enumerate(rep.histogram):
            bracket = "]" if i == len(rep.histogram) - 1 else ")"
            hist.add_row(f"[{fmt_points(lo)}, {fmt_points(hi)}{bracket}", str(n), "#" * n)
        out.print(hist)
        tests = Table(title="pass rate per test, hardest first", title_justify="left")
        for col in ("test", "points", "passed", "rate"):
            tests.add_column(col, justify="left" if col == "test" else "right")
        for t in rep.tests:
            tests.add_row(t.title, fmt_points(t.points), f"{t.passed}/{t.total}",
                          f"{100 * t.rate:.0f}%")
        out.print(tests)
        if rep.problems:
            probs = Table(title="errored or timed out", title_justify="left")
            for col in ("learner", "status", "problem", "reason"):
                probs.add_column(col, overflow="fold")
            for p in rep.problems:
                probs.add_row(p.learner, p.status, p.problem or "", p.reason)
            out.print(probs)
        slow = Table(title="slowest submissions", title_justify="left")
        slow.add_column("learner")
        slow.add_column("seconds", justify="right")
        for who, secs in rep.slowest:
            slow.add_row(who, f"{secs:.1f}")
        out.print(slow)


@app.command()
@handles_errors
def export(
    gradebook: GradebookOpt = DEFAULT_GRADEBOOK,
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv or json.")]
    = ExportFormat.CSV,
    detail: Annotated[bool, typer.Option(help="Add a column per grader test "
                                         "(ASSIGNMENT:TEST, points earned).")] = False,
) -> None:
    """One row per learner, a column per assignment, on stdout."""
    from mlgrade.batch.export import render
    from mlgrade.batch.gradebook import open_existing

    with open_existing(gradebook) as book:
        text = render(book, format, detail)
    sys.stdout.write(text)
    sys.stdout.flush()


class FeedbackChoice(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"
    BOTH = "both"


@app.command()
@handles_errors
def feedback(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the files (one per learner).")]
    = Path("feedback"),
    gradebook: GradebookOpt = DEFAULT_GRADEBOOK,
    format: Annotated[FeedbackChoice, typer.Option("--format", "-f", help="markdown, html or "
                                                   "both.")] = FeedbackChoice.BOTH,
) -> None:
    """Write one report per learner (LEARNER.md / LEARNER.html), the same as their own
    `mlgrade check` report."""
    from mlgrade.batch.feedback import write_feedback
    from mlgrade.batch.gradebook import open_existing

    formats = ((FeedbackFormat.MARKDOWN, FeedbackFormat.HTML) if format is FeedbackChoice.BOTH
               else (FeedbackFormat(format.value),))
    with open_existing(gradebook) as book:
        written = write_feedback(book, assignment, out, formats)
    say(f"wrote feedback for {len(written)} learner(s) to {out}/")
