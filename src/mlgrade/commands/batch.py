"""CLI commands for study-group leads: ``grade``, ``report``, ``export``, ``feedback``, ``adjust``.

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
    due: Annotated[str | None, typer.Option(
        help="Due date, ISO 8601 (2026-03-01T23:59:00+00:00) [default: `due` in "
        "assignment.toml]. Later submissions are flagged late.")] = None,
    late_penalty: Annotated[float | None, typer.Option(
        help="Points off per started day late [default: `late_penalty` in assignment.toml, "
        "else none].")] = None,
    submitted_at: Annotated[Path | None, typer.Option(
        "--submitted-at", help="CSV of learner,timestamp: when each learner handed in "
        "[default: last commit of a learner's git checkout, else the file's modification "
        "time].")] = None,
) -> None:
    """Grade a folder of submissions in parallel into a SQLite gradebook (resumable).

    Exit code 0 once the batch has finished: submissions that errored or timed out are recorded
    with their reasons (see `mlgrade report`), not failures of the command. Unless --seed or
    MLGRADE_SEED pins one, the graders' seed is a secret drawn once per gradebook and
    assignment and kept in the gradebook (`mlgrade report --show-seed`).
    """
    from dataclasses import replace

    from mlgrade.assignments import get_assignment
    from mlgrade.batch.due import read_times_csv, resolve_due
    from mlgrade.batch.gradebook import Gradebook
    from mlgrade.batch.marks import marks
    from mlgrade.batch.runner import grade_batch, plan_batch, provenance, record_unchanged
    from mlgrade.batch.submissions import discover
    from mlgrade.batch.workers import Backend, DaskBackend, LocalPool, _sandbox, cpu_count
    from mlgrade.config import SeedOrigin, draw_seed, resolve_settings
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
    policy = resolve_due(a, due, late_penalty)
    times = read_times_csv(submitted_at) if submitted_at is not None else None
    backend: Backend = (DaskBackend(scheduler, limit) if scheduler
                        else LocalPool(cpu_count() if workers is None else workers, limit))
    with tempfile.TemporaryDirectory(prefix="mlgrade-input-") as unpacked:
        found = discover(submissions, a.name, Path(unpacked))
        for item in found.skipped:
            say(f"skipped {item.source}: {item.reason}")
        for sub in found.submissions:
            if sub.ignored:
                say(f"{sub.learner}: grading {sub.source}; ignored {', '.join(sub.ignored)}")
        provenances = provenance(found, a, times)
        with Gradebook(gradebook) as book:
            if settings.seed_origin is not SeedOrigin.PINNED:
                settings = replace(settings, seed=book.assignment_seed(a.name, draw_seed),
                                   seed_origin=SeedOrigin.DRAWN)
            book.set_due(assignment=a.name, title=a.title, max_score=a.total_points,
                         due=policy.due.isoformat() if policy.due else None,
                         late_penalty=policy.late_penalty)
            plan = plan_batch(found, book, a, settings, regrade)
            record_unchanged(plan, a, book, provenances)
            say(f"{len(plan.todo)} to grade, {len(plan.up_to_date)} unchanged, "
                      f"{len(found.skipped)} skipped; {backend.description}")
            observer: BatchObserver
            if err.is_terminal:
                observer = RichProgress(err)
                try:
                    tally = grade_batch(plan, a, settings, backend, book, observer, provenances)
                finally:
                    observer.stop()
            else:
                observer = PlainProgress()
                tally = grade_batch(plan, a, settings, backend, book, observer, provenances)
        with Gradebook(gradebook) as book:
            late = sum(1 for m in marks(book, a.name) if m.late.late)
    _summary(tally, len(plan.up_to_date), gradebook)
    seed_text = ("pinned" if settings.seed_origin is SeedOrigin.PINNED else
                 "secret, kept in the gradebook (`mlgrade report --show-seed` shows it)")
    say(f"seed: {seed_text}")
    if policy.due is not None or late:
        say(f"{late} late submission(s) in the gradebook for {a.name} (see `mlgrade report`)")


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
@handles_errors
def report(
    assignment: Annotated[str | None, typer.Argument(help="Assignment name [default: every "
                                                     "assignment in the gradebook].")] = None,
    gradebook: GradebookOpt = DEFAULT_GRADEBOOK,
    format: Annotated[ReportFormat | None, typer.Option(
        "--format", "-f", help="text tables or JSON [default: text; with --html, only the line "
        "naming the page written, unless --format is given].", show_default=False)] = None,
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG (or .svg/.pdf, by suffix): "
                                              "score histograms and per-test pass rates.")] = None,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write the dashboard: one self-contained HTML page for the whole "
        "gradebook, with each learner's feedback under feedback/ASSIGNMENT/ next to it.")] = None,
    with_feedback: Annotated[bool, typer.Option(
        "--feedback/--no-feedback", help="With --html: write the feedback pages the dashboard "
        "links to.")] = True,
    show_seed: Annotated[bool, typer.Option(
        "--show-seed", help="Show the secret seed each assignment was graded with (to "
        "reproduce a grade with `mlgrade check --seed`).")] = False,
    slowest: Annotated[int, typer.Option(help="How many of the slowest submissions to list.")] = 5,
) -> None:
    """Where the group struggles: score distribution, per-test pass rates (hardest first),
    errored and timed-out submissions, late work, adjustments, possible copies, slowest
    submissions. `--html FILE` writes the whole group's dashboard (and prints only where)."""
    import json

    from mlgrade.batch.feedback import FeedbackFormat, write_feedback
    from mlgrade.batch.gradebook import open_existing
    from mlgrade.batch.report import build_reports
    from mlgrade.batch.report import plot as write_plot

    with open_existing(gradebook) as book:
        reports = build_reports(book, assignment, slowest, show_seed=show_seed)
        if html is not None:
            from mlgrade.batch.dashboard import FEEDBACK_DIR, write_dashboard

            # the whole group on one page, whatever ASSIGNMENT narrows the text report to
            everything = reports if assignment is None else build_reports(
                book, None, slowest, show_seed=show_seed)
            if with_feedback:
                for rep in everything:
                    folder = html.parent / FEEDBACK_DIR / rep.assignment
                    write_feedback(book, rep.assignment, folder, (FeedbackFormat.HTML,))
            say(f"wrote {write_dashboard(everything, html, gradebook)}"
                + (f" and feedback pages under {html.parent / FEEDBACK_DIR}/" if with_feedback
                   else ""))
    if plot is not None:
        say(f"wrote {write_plot(reports, plot)}")
    if format is None and html is not None:
        return  # the page is the report: the line above says where it is
    if format is ReportFormat.JSON:
        sys.stdout.write(json.dumps([r.to_dict() for r in reports], indent=2,
                                    ensure_ascii=False) + "\n")
        return
    from mlgrade.batch.report_text import print_report

    out = Console(highlight=False)
    for rep in reports:
        print_report(out, rep)


@app.command()
@handles_errors
def export(
    gradebook: GradebookOpt = DEFAULT_GRADEBOOK,
    format: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv, json or xlsx.")]
    = ExportFormat.CSV,
    detail: Annotated[bool, typer.Option(help="Add a column per grader test "
                                         "(ASSIGNMENT:TEST, points that count).")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of stdout (needed for xlsx).")] = None,
    excel: Annotated[bool | None, typer.Option(
        "--excel/--no-excel", help="CSV for a spreadsheet: a UTF-8 byte-order mark (so Excel "
        "reads accents) and CRLF lines [default: on with --output, off on stdout].")] = None,
) -> None:
    """One row per learner; per assignment the score that counts, max, percent, status, late,
    original and adjusted score."""
    from mlgrade.batch.export import render, write_xlsx
    from mlgrade.batch.gradebook import open_existing
    from mlgrade.errors import UsageError
    from mlgrade.fsutil import write_text_atomic

    if format is ExportFormat.XLSX and output is None:
        raise UsageError("--format xlsx writes a binary file: pass --output grades.xlsx.")
    with open_existing(gradebook) as book:
        if format is ExportFormat.XLSX:
            assert output is not None
            say(f"wrote {write_xlsx(book, output, detail)}")
            return
        bom = excel if excel is not None else output is not None
        text = render(book, format, detail, bom=bom and format is ExportFormat.CSV)
    if output is not None:
        write_text_atomic(output, text)
        say(f"wrote {output}")
        return
    sys.stdout.write(text)
    sys.stdout.flush()


@app.command()
@handles_errors
def adjust(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    learner: Annotated[str, typer.Argument(help="Learner id, as `mlgrade report` lists it.")],
    test: Annotated[str | None, typer.Option(
        "--test", help="The grader test to adjust (its id, or its question id when that names "
        "one test).")] = None,
    points: Annotated[float | None, typer.Option(
        help="With --test: the points that test counts for (0 to its maximum).")] = None,
    total: Annotated[float | None, typer.Option(
        help="The assignment's score that counts (0 to the maximum; no late penalty on top), "
        "instead of --test.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (required; shown to the learner in "
                                               "their feedback).")] = None,
    by: Annotated[str | None, typer.Option(
        help="Who made it [default: git's user.name, else your login name].")] = None,
    undo: Annotated[bool, typer.Option("--undo", help="Undo the adjustment of --test (or of "
                                       "the total).")] = False,
    gradebook: GradebookOpt = DEFAULT_GRADEBOOK,
) -> None:
    """Record a manual adjustment (who, when, why) on a learner's current submission.

    It is kept when the same notebook is regraded, stops applying when the learner hands in a
    different one, and shows in report, export and feedback. The graders' score is kept too.
    """
    from mlgrade.batch.adjust import apply_adjustment, author
    from mlgrade.batch.gradebook import open_existing

    with_who = author(by)

    with open_existing(gradebook) as book:
        say(apply_adjustment(book, assignment=assignment, learner=learner, test=test,
                             points=points, total=total, reason=reason, by=with_who, undo=undo))


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
