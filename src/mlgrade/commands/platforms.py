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
classroom_app = sub_app(help="GitHub Classroom: generate the autograding workflow.")
gradescope_app = sub_app(help="Gradescope: build the autograder zip.")
app.add_typer(classroom_app, name="classroom")
app.add_typer(gradescope_app, name="gradescope")

InstallOpt = Annotated[str | None, typer.Option(
    "--install", help="pip requirement that installs mlgrade (default: mlgrade==<this version>);"
    " e.g. a git URL or a wheel URL.", show_default=False)]
ConstraintsOpt = Annotated[str | None, typer.Option(
    "--constraints", help="Constraints file path or URL passed to pip with -c.",
    show_default=False)]
NotebookOpt = Annotated[str | None, typer.Option(
    "--notebook", help="File name of the learner's notebook (default: the starter's name).",
    show_default=False)]


@classroom_app.command("workflow")
@handles_errors
def classroom_workflow_cmd(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the YAML here "
                                                "instead of stdout.")] = None,
    notebook: NotebookOpt = None,
    python: Annotated[str, typer.Option("--python", help="Python version for "
                                        "actions/setup-python.")] = "3.12",
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


@gradescope_app.command("bundle")
@handles_errors
def gradescope_bundle_cmd(
    assignment: Annotated[str, typer.Argument(help="Assignment name, e.g. month3.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Zip file to write.")] =
        Path("autograder.zip"),
    notebook: NotebookOpt = None,
    install: InstallOpt = None,
    constraints: ConstraintsOpt = None,
) -> None:
    """Build the Gradescope autograder zip (setup.sh + run_autograder)."""
    from mlgrade.assignments import get_assignment
    from mlgrade.deliver import gradescope_bundle

    a = get_assignment(assignments_root(), assignment)
    gradescope_bundle(a, output, install=install, constraints=constraints, notebook=notebook)
    err.print(f"wrote {output}. Upload it as the autograder of a Gradescope programming "
              "assignment.", markup=False)
