"""CLI commands for learners: ``list``, ``start`` and ``check``.

Thin wiring over :mod:`mlgrade.pipeline`: parse, run, render. The console report goes to
stdout; machine formats keep stdout for the document and put the human summary on stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mlgrade.assignments import get_assignment, list_assignments
from mlgrade.commands._common import assignments_root, err, handles_errors, options, sub_app
from mlgrade.config import OFFICIAL_FORMATS, resolve_settings, with_seed_origin
from mlgrade.errors import ExitCode, UsageError
from mlgrade.fsutil import copy_file_atomic
from mlgrade.render import Format

app = sub_app()


@app.command("list")
@handles_errors
def list_cmd() -> None:
    """List the assignments with their titles, topics and total points."""
    from rich.table import Table

    table = Table(title="mlgrade assignments", title_justify="left")
    table.add_column("assignment")
    table.add_column("title")
    table.add_column("topics", overflow="fold", max_width=60)
    table.add_column("points", justify="right")
    for a in list_assignments(assignments_root()):
        table.add_row(a.name, a.title, ", ".join(a.topics), f"{a.total_points:g}")
    Console(highlight=False).print(table)


@app.command()
@handles_errors
def start(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month2.")],
    dest: Annotated[Path | None, typer.Option("--dest", help="Where to write the notebook "
                                              "(default ./ASSIGNMENT.ipynb).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Copy an assignment's starter notebook (and its data files) into this folder."""
    a = get_assignment(assignments_root(), assignment)
    target = dest or Path(f"{a.name}.ipynb")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; your work is kept. Use --force to overwrite it, "
                         "or --dest to write elsewhere.")
    copy_file_atomic(a.starter, target)  # the learner's file: the usual mode, not 0600
    for data in a.data_dirs:
        shutil.copytree(data, target.parent / data.name, dirs_exist_ok=True)
    err.print(f"wrote {target}. Open it in Jupyter, then run `mlgrade check {a.name}`.")


@app.command()
@handles_errors
def check(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month2.")],
    notebook: Annotated[Path | None, typer.Argument(help="Notebook to grade "
                                                    "(default ./ASSIGNMENT.ipynb).")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.CONSOLE,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write a machine format "
                                                "to this file instead of stdout.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the graders' random inputs "
                                             "(also MLGRADE_SEED).")] = None,
    cell_timeout: Annotated[float | None, typer.Option(help="Seconds per cell.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds for the whole "
                                                  "notebook.")] = None,
    call_timeout: Annotated[float | None, typer.Option(help="Seconds per grader call.")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Kernel memory limit in MiB (0: none).")] = None,
    isolation: Annotated[str | None, typer.Option(help="auto, process, namespaced or none.")] = None,
    save_executed: Annotated[Path | None, typer.Option(help="Also write the executed notebook "
                                                       "here, to inspect outputs.")] = None,
) -> None:
    """Run a notebook headlessly in a fresh kernel and grade it with the hidden graders."""
    from mlgrade.pipeline import check_notebook

    a = get_assignment(assignments_root(), assignment)
    path = notebook if notebook is not None else Path(f"{a.name}.ipynb")
    settings = resolve_settings(
        {"seed": seed, "cell_timeout": cell_timeout, "notebook_timeout": timeout,
         "call_timeout": call_timeout, "memory_mb": memory_mb, "isolation": isolation},
        a.limits, official=format.value in OFFICIAL_FORMATS,
    )
    show_status = err.is_terminal
    if show_status:
        with err.status(f"running {path} ...") as status:
            checked = check_notebook(path, a, settings, save_executed=save_executed,
                                     observer=lambda s: status.update(f"{s}: {path} ..."))
    else:
        checked = check_notebook(path, a, settings, save_executed=save_executed)
    result = with_seed_origin(checked.result, settings, format.value)
    if options.debug:
        for detail in checked.grader_errors:
            err.print(detail, markup=False)
    if format is Format.CONSOLE:
        from mlgrade.render.console import build

        err.print(build(result))
    else:
        from mlgrade.deliver import deliver

        # written only now that grading finished: --output atomically, classroom to
        # $GITHUB_OUTPUT/$GITHUB_STEP_SUMMARY inside Actions, otherwise stdout
        text = deliver(result, format, output=output, env=os.environ, assignment=a)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
        err.print(f"score {result.score:g}/{result.max_score:g} ({result.status})", markup=False)
    raise typer.Exit(int(ExitCode.OK if result.full_marks else ExitCode.POINTS_LOST))
