"""CLI commands: authoring (a sub-app of the ``mlgrade`` command tree).

``mlgrade validate`` checks that an assignment is ready to hand out; the checks themselves
live in :mod:`mlgrade.validate`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlgrade.assignments import get_assignment, load_assignment
from mlgrade.commands._common import assignments_root, err, handles_errors, sub_app
from mlgrade.config import resolve_settings
from mlgrade.errors import ExitCode, UsageError
from mlgrade.results import GradeResult

if TYPE_CHECKING:  # the checks import pytest and the bridge: only when validating
    from mlgrade.validate import ValidationReport

app = sub_app()


def _print_report(report: ValidationReport) -> None:
    err.print(f"validate {report.assignment} ({report.folder}), seed {report.seed}", markup=False)
    for check in report.checks:
        mark = "[green]ok  [/green]" if check.ok else "[bold red]FAIL[/bold red]"
        err.print(f"  {mark} {check.name}", markup=True, end="")
        err.print(f": {check.detail}" if check.detail else "", markup=False, soft_wrap=True)
    if report.runs:
        err.print("timings:", markup=False)
        for run in report.runs:
            err.print(f"  {run.label}: {run.total_s:.1f} s (notebook {run.notebook_s:.1f} s), "
                      f"score {run.score:g}/{run.max_score:g}", markup=False)
    if report.slowest_tests:
        slow = ", ".join(f"{name} {secs:.1f} s" for name, secs in report.slowest_tests)
        err.print(f"slowest tests (solution): {slow}", markup=False, soft_wrap=True)
    failed = len(report.failed)
    if failed:
        err.print(f"[bold red]{report.assignment}: {failed} of {len(report.checks)} checks "
                  "failed[/bold red]", markup=True)
    else:
        err.print(f"[green]{report.assignment}: valid ({len(report.checks)} checks)[/green]",
                  markup=True)


@app.command()
@handles_errors
def validate(
    assignment: Annotated[str | None, typer.Argument(
        help="Assignment name in the assignments folder (see --assignments).")] = None,
    path: Annotated[Path | None, typer.Option(
        "--path", help="An assignment folder to validate instead of a name.",
        show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the graders' random inputs "
                                             "(also MLGRADE_SEED).")] = None,
    determinism: Annotated[bool, typer.Option(
        "--determinism/--no-determinism",
        help="Grade the solution twice and compare scores per test.")] = True,
    mutants: Annotated[bool, typer.Option(
        "--mutants", help="Also grade each mutant and alternative of graders/NAME/mutants.toml: "
        "a mutant must fail exactly its tests, every test must fail for some mutant, an "
        "alternative must earn full marks.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]
    = False,
    solution: Annotated[Path | None, typer.Option(
        "--solution", help="The reference solution to use (reference solutions are not "
        "installed with mlgrade: from a source checkout, solutions/NAME.ipynb).",
        show_default=False)] = None,
) -> None:
    """Check an assignment before handing it out: the solution earns full marks, the starter
    earns zero, grading is deterministic, points add up per question, every test has a title
    and @points, every instruction maps to a test and every test to an instruction, expected
    values do not come from learner calls (with --mutants: known-wrong solutions fail exactly
    their tests). Exit code 0: valid; 1: a check failed; 2: usage error."""
    from mlgrade.pipeline import check_notebook
    from mlgrade.validate import validate_assignment

    if (assignment is None) == (path is None):
        raise UsageError("give an assignment name or --path DIR (one of them). "
                         "Run `mlgrade list` to see assignments.")
    if path is not None:
        if not (path / "assignment.toml").is_file():
            raise UsageError(f"--path: {path} has no assignment.toml; point it at one "
                             "assignment's folder.")
        a = load_assignment(path.resolve())
    else:
        a = get_assignment(assignments_root(), str(assignment))
    if solution is not None:
        if a.is_repository and solution.exists():
            pass  # a repository's reference: a folder or a .zip
        elif not solution.is_file():
            raise UsageError(f"--solution: {solution} is not a file; pass the reference notebook.")
        a = dataclasses.replace(a, solution=solution.resolve())
    settings = resolve_settings({"seed": seed}, a.limits)

    def grade(notebook: Path) -> GradeResult:
        if a.is_repository:  # a folder or a .zip
            from mlgrade.repo.check import check_repository

            return check_repository(notebook, a, settings).result
        return check_notebook(notebook, a, settings).result

    if a.is_repository:  # the starter and mutants are repositories: mlgrade.repo.validate
        from mlgrade.repo.validate import validate_repository

        validate_assignment = validate_repository

    if err.is_terminal:
        with err.status(f"validating {a.name} ...") as status:
            report = validate_assignment(
                a, settings, grade, determinism=determinism, mutants=mutants,
                observer=lambda s: status.update(f"validating {a.name}: {s} ..."))
    else:
        report = validate_assignment(a, settings, grade, determinism=determinism, mutants=mutants)
    _print_report(report)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        sys.stdout.flush()
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.POINTS_LOST))
