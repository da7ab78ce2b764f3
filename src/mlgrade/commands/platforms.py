"""``mlgrade classroom ...`` and ``mlgrade gradescope ...``: files a lead uploads to a platform.

Thin wrappers: the work is in :mod:`mlgrade.deliver`. See docs/platforms.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mlgrade.commands._common import assignments_root, err, handles_errors, sub_app

app = sub_app()
classroom_app = sub_app(help="GitHub Classroom: a template repository, or just its autograding workflow.")
gradescope_app = sub_app(help="Gradescope: build the autograder zip.")
app.add_typer(classroom_app, name="classroom")
app.add_typer(gradescope_app, name="gradescope")

InstallOpt = Annotated[str | None, typer.Option(
    "--install", help="pip requirement that installs mlgrade instead of the wheel of this mlgrade "
    "that travels with the files (e.g. a git URL, or mlgrade==0.1.0 once it is on an index).",
    show_default=False)]
WheelOpt = Annotated[Path | None, typer.Option(
    "--wheel", help="A wheel of this mlgrade version to ship (default: built from this "
    "installation).", show_default=False)]
PythonOpt = Annotated[str, typer.Option("--python", help="Python version for actions/setup-python.")]
ConstraintsOpt = Annotated[str | None, typer.Option(
    "--constraints", help="Constraints file path or URL passed to pip with -c.",
    show_default=False)]
NotebookOpt = Annotated[str | None, typer.Option(
    "--notebook", help="File name of the learner's notebook (default: the starter's name); "
    "notebook assignments only: a repository assignment grades the whole repository.",
    show_default=False)]


@classroom_app.command("workflow")
@handles_errors
def classroom_workflow_cmd(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the YAML here "
                                                "instead of stdout.")] = None,
    notebook: NotebookOpt = None,
    python: PythonOpt = "3.12",
    install: InstallOpt = None,
    constraints: ConstraintsOpt = None,
) -> None:
    """Print .github/workflows/classroom.yml: one reporter runner per grader test."""
    from mlgrade.assignments import get_assignment
    from mlgrade.deliver import classroom_workflow, collect_grader_tests
    from mlgrade.fsutil import write_text_atomic

    a = get_assignment(assignments_root(), assignment)
    text = classroom_workflow(a, collect_grader_tests(a), notebook=notebook, python=python,
                              install=install, constraints=constraints)
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(output, text)
        err.print(f"wrote {output}. Commit it as .github/workflows/classroom.yml in the "
                  "template repository.", markup=False)
    if install is None:
        from mlgrade.own_wheel import wheel_name

        err.print(f"It installs .github/mlgrade/{wheel_name()} from the repository: "
                  "`mlgrade classroom init` writes the whole template with it.", markup=False)


@classroom_app.command("init")
@handles_errors
def classroom_init_cmd(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    dest: Annotated[Path, typer.Argument(help="New (or empty) folder for the template repository.")],
    python: PythonOpt = "3.12",
    install: InstallOpt = None,
    constraints: ConstraintsOpt = None,
    wheel: WheelOpt = None,
) -> None:
    """Write a GitHub Classroom template repository: starter notebook (or the starter repository
    of a repository assignment), learner README, workflow, mlgrade wheel."""
    from mlgrade.assignments import get_assignment
    from mlgrade.deliver import classroom_template

    a = get_assignment(assignments_root(), assignment)
    written = classroom_template(a, dest, install=install, wheel=wheel, python=python,
                                 constraints=constraints)
    err.print(f"wrote {len(written)} files to {dest}. Push it to GitHub, mark it as a template "
              "and use it as the assignment's starter code; set the MLGRADE_SEED secret "
              "(see its README).", markup=False)


@gradescope_app.command("bundle")
@handles_errors
def gradescope_bundle_cmd(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Zip file to write.")] =
        Path("autograder.zip"),
    notebook: NotebookOpt = None,
    install: InstallOpt = None,
    constraints: ConstraintsOpt = None,
    wheel: WheelOpt = None,
) -> None:
    """Build the Gradescope autograder zip (setup.sh, run_autograder, the mlgrade wheel); it
    grades the submitted notebook, or the submitted repository of a repository assignment."""
    from mlgrade.assignments import get_assignment
    from mlgrade.deliver import gradescope_bundle

    a = get_assignment(assignments_root(), assignment)
    gradescope_bundle(a, output, install=install, constraints=constraints, notebook=notebook,
                      wheel=wheel)
    err.print(f"wrote {output}. Upload it as the autograder of a Gradescope programming "
              "assignment.", markup=False)
