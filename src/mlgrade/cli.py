"""Command line: the root application, built from the sub-apps in :mod:`mlgrade.commands`.

Each command module owns a typer sub-app and imports what commands share (the stderr
console, ``handles_errors``, global options) from :mod:`mlgrade.commands._common`. This file
only holds the global options and the tree; no grading logic lives in the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgrade import __version__
from mlgrade.commands import authoring, batch, doctor, learner, platforms
from mlgrade.commands._common import options, sub_app

app = sub_app(
    name="mlgrade",
    help="Run a learner's notebook headlessly, grade it with hidden tests, report the score.",
)

AssignmentsOpt = Annotated[
    Path | None,
    typer.Option("--assignments", help="Folder of assignments to use instead of the bundled ones "
                 "(also MLGRADE_ASSIGNMENTS).", show_default=False),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlgrade {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    assignments: AssignmentsOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """mlgrade: grade machine-learning notebooks with hidden tests."""
    options.debug = debug
    options.assignments = assignments


# The command tree: learners (list, start, check), leads (grade, report, export, feedback),
# authors (validate), platforms (classroom ..., gradescope ...).
for module in (learner, batch, authoring, platforms, doctor):
    app.add_typer(module.app)


def main() -> None:
    """Console entry point (``mlgrade``). A usage error (unknown option, a value the option
    parser refuses) is one line in mlgrade's words and exit 2, like every other error."""
    import gc
    import sys

    from mlgrade.commands._common import fail_line

    try:
        code = app(standalone_mode=False, prog_name="mlgrade")
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # typer's own copy of click's UsageError and kin
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())  # `mlgrade check` with nothing else: the help
            sys.exit(2)
        where = ctx.command_path if ctx is not None else "mlgrade"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        message = message.strip()
        end = "" if message.endswith((".", "?", "!")) else "."
        fail_line(f"{message}{end} Run `{where} --help` for the options.")
        sys.exit(int(getattr(exc, "exit_code", 2)))
    finally:
        # the interpreter's last garbage collections would walk every object the graders'
        # libraries made (0.3-0.7 s after a check); the work is done, so they are skipped
        # (atexit handlers and reference counting still run)
        gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)
