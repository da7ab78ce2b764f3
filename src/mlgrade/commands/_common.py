"""What every CLI command module shares: the stderr console, global options, error mapping.

``mlgrade.cli`` builds the root application from the sub-apps in :mod:`mlgrade.commands`;
the command modules import from here, never from ``mlgrade.cli`` (no import cycle).
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mlgrade.assignments import resolve_assignments_dir
from mlgrade.errors import ExitCode, MlgradeError, OutOfDescriptors, out_of_descriptors

err = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class GlobalOptions:
    """Options given before the command (``mlgrade --debug --assignments DIR check ...``)."""

    debug: bool = False
    assignments: Path | None = None


options = GlobalOptions()


def sub_app(**kwargs: Any) -> typer.Typer:
    """A typer sub-application with mlgrade's settings: plain help, no locals in tracebacks."""
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(
        pretty_exceptions_show_locals=False,  # locals could leak hidden tests or solutions
        add_completion=False,
        rich_markup_mode=None,  # help texts stay as written: "[default: ...]", "mlgrade[cluster]"
        **kwargs,
    )


def assignments_root(local: Path | None = None) -> Path:
    """The assignments folder: ``local`` > ``--assignments`` > ``MLGRADE_ASSIGNMENTS`` > bundled."""
    return resolve_assignments_dir(local if local is not None else options.assignments)


def say(text: str) -> None:
    """A plain line on stderr: no markup (learner names may hold brackets), no wrapping."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def fail_line(text: str) -> None:
    """The one ``error:`` line on stderr; escaped, since messages quote paths and commands."""
    err.print(f"[bold red]error:[/bold red] {escape(text)}", markup=True, soft_wrap=True)


def handles_errors(func: F) -> F:
    """Map failures to one line on stderr and a documented exit code.

    ``MlgradeError`` carries its own code (2 usage, 3 environment, ...); Ctrl-C is 130; any
    other exception is a bug in mlgrade: exit 4 with one line (the traceback with ``--debug``).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except MlgradeError as exc:
            if options.debug:
                traceback.print_exc()
            fail_line(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            err.print("interrupted; the kernel was shut down.")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug of ours: one line, documented code, no locals
            if options.debug:
                traceback.print_exc()
            if out_of_descriptors(exc):  # not a bug: the machine's limit, one line and code 3
                problem = OutOfDescriptors(f"{type(exc).__name__}: {exc}")
                fail_line(str(problem))
                raise typer.Exit(int(problem.exit_code)) from None
            fail_line(f"internal error in mlgrade ({type(exc).__name__}: {exc}). Please report it; "
                      "run again with --debug for the traceback.")
            raise typer.Exit(int(ExitCode.INTERNAL)) from None

    return wrapper  # type: ignore[return-value]
