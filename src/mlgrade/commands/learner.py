"""CLI commands for learners: ``list``, ``start`` and ``check``.

Thin wiring over :mod:`mlgrade.pipeline`: parse, run, render. The console report goes to
stdout; machine formats keep stdout for the document and put the human summary on stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from mlgrade.assignments import Assignment, get_assignment, list_assignments, missing_requirements_note
from mlgrade.commands._common import assignments_root, err, fail_line, handles_errors, options, say, sub_app
from mlgrade.config import OFFICIAL_FORMATS, Settings, resolve_settings, with_seed_origin
from mlgrade.errors import ExitCode, NotebookInputError, UsageError
from mlgrade.fsutil import copy_file_atomic
from mlgrade.render import Format

if TYPE_CHECKING:
    from mlgrade.prestart import PrestartedKernel

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
    directory: Annotated[Path | None, typer.Argument(help="Where to write it (like --dest); a "
                                                     "repository assignment writes a folder "
                                                     "(default ./ASSIGNMENT).")] = None,
    dest: Annotated[Path | None, typer.Option("--dest", help="Where to write the notebook "
                                              "(default ./ASSIGNMENT.ipynb).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Copy an assignment's starter notebook (and its data files) into this folder; for a
    repository assignment (the capstone), write its starter repository."""
    a = get_assignment(assignments_root(), assignment)
    if a.is_repository:
        from mlgrade.repo.start import start_repository

        for line in start_repository(a, directory or dest or Path(a.name), force=force):
            say(line)
        return
    target = directory or dest or Path(f"{a.name}.ipynb")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; your work is kept. Use --force to overwrite it, "
                         "or --dest to write elsewhere.")
    copy_file_atomic(a.starter, target)  # the learner's file: the usual mode, not 0600
    for data in a.data_dirs:
        shutil.copytree(data, target.parent / data.name, dirs_exist_ok=True)
    for line in next_steps(a, target):
        say(line)
    note = missing_requirements_note(a)  # torch for month 5: say so now, not at the first check
    if note:
        say(note)


def next_steps(a: Assignment, target: Path) -> list[str]:
    """What ``start`` tells a learner: how to open the file it wrote, and the command that
    checks exactly that file (its path as given, so ``--dest`` paths work)."""
    import importlib.util
    import shlex

    where = f"--assignments {shlex.quote(str(options.assignments))} " if options.assignments else ""
    default = target == Path(f"{a.name}.ipynb")
    check_cmd = f"mlgrade {where}check {a.name}" + ("" if default else f" {shlex.quote(str(target))}")
    first_q = a.questions[0].id if a.questions else "q1"
    lab = importlib.util.find_spec("jupyterlab") is not None
    classic = importlib.util.find_spec("notebook") is not None
    opener = f"jupyter {'lab' if lab or not classic else 'notebook'} {shlex.quote(str(target))}"
    lines = [f"wrote {target}", f"  open it:      {opener}"]
    if not (lab or classic):
        lines.append('                (Jupyter is not installed here: pip install "mlgrade[jupyter]")')
    lines += [f"  in a cell:    import mlgrade; mlgrade.check(\"{first_q}\")   (a quick self-check)",
              f"  grade it:     {check_cmd}"]
    return lines


# setting -> the flag a learner typed, so a bad value's error names that flag
FLAGS = {"seed": "--seed", "cell_timeout": "--cell-timeout", "notebook_timeout": "--timeout",
         "call_timeout": "--call-timeout", "memory_mb": "--memory-mb", "isolation": "--isolation"}


@app.command()
@handles_errors
def check(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month2.")],
    notebook: Annotated[Path | None, typer.Argument(help="Notebook to grade (default "
                                                    "./ASSIGNMENT.ipynb); for a repository "
                                                    "assignment, its folder, git checkout or "
                                                    ".zip (default ./ASSIGNMENT).")] = None,
    question: Annotated[list[str] | None, typer.Option(
        "--question", "-q", help="Run only this question's graders, e.g. q2 (repeatable); the "
        "notebook still runs in full.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Check again each time the notebook "
                                        "file is saved (Ctrl-C to stop).")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.CONSOLE,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write a machine format "
                                                "to this file instead of stdout.")] = None,
    # numbers are read as text and checked by resolve_settings: a bad value is one line in
    # mlgrade's words that names the flag (not the option parser's four-line box)
    seed: Annotated[str | None, typer.Option(help="Seed for the graders' random inputs "
                                             "(also MLGRADE_SEED).", metavar="INTEGER")] = None,
    cell_timeout: Annotated[str | None, typer.Option(help="Seconds per cell.", metavar="SECONDS")] = None,
    timeout: Annotated[str | None, typer.Option("--timeout", help="Seconds for the whole "
                                                "notebook.", metavar="SECONDS")] = None,
    call_timeout: Annotated[str | None, typer.Option(help="Seconds per grader call.",
                                                     metavar="SECONDS")] = None,
    memory_mb: Annotated[str | None, typer.Option(help="Kernel memory limit in MiB (0: none).",
                                                  metavar="MIB")] = None,
    isolation: Annotated[str | None, typer.Option(help="auto, process, namespaced or none.")] = None,
    save_executed: Annotated[Path | None, typer.Option(help="Also write the executed notebook "
                                                       "here, to inspect outputs.")] = None,
) -> None:
    """Run a notebook headlessly in a fresh kernel and grade it with the hidden graders (or
    grade a repository assignment's repository in the same sandbox)."""
    from mlgrade.selfcheck.choose import choose_questions

    root = assignments_root()
    a = get_assignment(root, assignment)
    if a.is_repository and (watch or save_executed is not None):
        raise UsageError(f"{a.name} grades a repository: --watch and --save-executed apply to "
                         "notebooks only.")
    default = Path(a.name) if a.is_repository else Path(f"{a.name}.ipynb")
    path = notebook if notebook is not None else default
    settings = resolve_settings(
        {"seed": seed, "cell_timeout": cell_timeout, "notebook_timeout": timeout,
         "call_timeout": call_timeout, "memory_mb": memory_mb, "isolation": isolation},
        a.limits, official=format.value in OFFICIAL_FORMATS, flags=FLAGS,
    )
    questions = choose_questions(a, question)
    if not watch:
        code = _check_once(a, root, path, settings, questions, format, output, save_executed)
        raise typer.Exit(int(code))
    from mlgrade.commands._progress import watch as watch_file

    if output is None and format is not Format.CONSOLE:
        raise UsageError("--watch prints a console report each time; with another --format, "
                         "add --output FILE.")
    watch_file(path, lambda: _check_once(a, root, path, settings, questions, format, output,
                                         save_executed, keep_going=True), said=say)


def _check_once(a: Assignment, root: Path, path: Path, settings: Settings,
                questions: tuple[str, ...] | None, format: Format, output: Path | None,
                save_executed: Path | None, keep_going: bool = False) -> ExitCode:
    """One run and its report; the exit code it earns. With ``keep_going`` (``--watch``), an
    input error is reported as a line and the watch goes on (the file may be mid-save)."""
    if a.is_repository or not path.is_file():
        return _check_now(a, root, path, settings, questions, format, output, save_executed,
                          keep_going, None)
    from mlgrade.sandbox import sandbox_soon

    sandbox = sandbox_soon(settings)  # bubblewrap's probe runs while the kernel's modules load
    from mlgrade.prestart import started_early

    # the kernel boots while the rest of mlgrade loads and the notebook is read (it may have
    # started before the command line was parsed: mlgrade.commands.early)
    with started_early(a, settings, sandbox) as kernel:
        return _check_now(a, root, path, settings, questions, format, output, save_executed,
                          keep_going, kernel)


def _check_now(a: Assignment, root: Path, path: Path, settings: Settings,
               questions: tuple[str, ...] | None, format: Format, output: Path | None,
               save_executed: Path | None, keep_going: bool,
               kernel: PrestartedKernel | None) -> ExitCode:
    from mlgrade.commands._progress import LiveProgress, PlainProgress
    from mlgrade.commands._quiet import native_output_silenced
    from mlgrade.errors import MlgradeError
    from mlgrade.pipeline import Checked, Observer, check_notebook
    from mlgrade.selfcheck.detect import looks_like_another, notebook_names

    def run(observer: Observer) -> Checked:
        if a.is_repository:  # a folder, a git checkout or a .zip
            from mlgrade.repo.check import check_repository

            return check_repository(path, a, settings, observer=observer, questions=questions)
        return check_notebook(path, a, settings, save_executed=save_executed, observer=observer,
                              questions=questions, prestarted=kernel)

    try:
        if path.is_file() and not a.is_repository:
            other = looks_like_another(notebook_names(path), a, list_assignments(root))
            if other is not None:
                raise NotebookInputError(
                    f"{path} does not look like {a.name}: it defines {other.name}'s names. "
                    f"This looks like {other.name}: run `mlgrade check {other.name} {path}`.")
        name = path.name or path.resolve().name  # `mlgrade check capstone .` in a checkout
        label = name if questions is None else f"{name} ({', '.join(questions)})"
        # what a grader-side library writes to descriptors 1 and 2 goes nowhere: stdout is
        # the report's alone (sys.stderr still shows the progress)
        with native_output_silenced():
            if err.is_terminal:
                live = LiveProgress(err, label)
                with live.shown():
                    checked = run(live)
            else:
                checked = run(PlainProgress(sys.stderr, label))
    except MlgradeError as exc:
        if not keep_going or not isinstance(exc, NotebookInputError):
            raise
        fail_line(str(exc))
        return exc.exit_code
    result = with_seed_origin(checked.result, settings, format.value)
    if options.debug:
        for detail in checked.grader_errors:
            err.print(detail, markup=False)
    if format is Format.CONSOLE and output is None:
        from mlgrade.render.console import WIDTH, build, render_text

        # the report is the command's output: stdout (`mlgrade check month2 > report.txt`)
        out = Console(highlight=False)
        if out.is_terminal:
            out.width = min(out.width, WIDTH)
            out.print(build(result))
        else:  # a file or a pipe: plain text, 80 columns, no trailing blanks
            sys.stdout.write(render_text(result))
            sys.stdout.flush()
    else:
        from mlgrade.deliver import deliver

        # written only now that grading finished: --output atomically, classroom to
        # $GITHUB_OUTPUT/$GITHUB_STEP_SUMMARY inside Actions, otherwise stdout
        text = deliver(result, format, output=output, env=os.environ, assignment=a)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
        err.print(f"score {result.score:g}/{result.max_score:g} ({result.status})", markup=False)
    return ExitCode.OK if result.full_marks else ExitCode.POINTS_LOST
