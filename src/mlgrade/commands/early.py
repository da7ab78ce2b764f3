"""`mlgrade check`'s kernel, started before the command line is parsed.

Loading the CLI and parsing with typer (which builds a pydantic adapter per option) take about
0.3 s, and a kernel needs about 0.5 s to boot; started after both, the kernel's boot was the
check's critical path. For the common command lines of a learner's check (``mlgrade check NAME
[NOTEBOOK] [-f FORMAT] [-o FILE] [-q QUESTION]``, a notebook file that exists, a format that
does not draw a fresh seed), the kernel for exactly that check starts first
(:func:`mlgrade.prestart.guess`), before the CLI is imported (``mlgrade.__main__``), and boots
while the command is parsed.

It is a guess: the check itself parses, validates and resolves everything as usual, and takes
the kernel only if its assignment and settings are the ones guessed
(:func:`mlgrade.prestart.started_early`); anything else shuts it down unused. Any other command
line, any option not listed above, and any problem met while guessing means no guess: the
command then meets (and reports) the problem itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

# options that take a value and change nothing about the kernel
_VALUE_OPTIONS = {"-f": "format", "--format": "format", "-o": "output", "--output": "output",
                  "-q": "question", "--question": "question"}


def parse(argv: Sequence[str]) -> tuple[str, Path | None, str] | None:
    """(assignment, notebook or None, format) for a plain ``check`` command line, else None."""
    if not argv or argv[0] != "check":
        return None
    positional: list[str] = []
    form = "console"
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_OPTIONS:
            if i + 1 >= len(argv):
                return None
            if _VALUE_OPTIONS[arg] == "format":
                form = argv[i + 1]
            i += 2
        elif arg.startswith("-") or not arg:  # any other option (--watch, --seed, --help ...)
            return None
        else:
            positional.append(arg)
            i += 1
    if len(positional) not in (1, 2):
        return None
    return positional[0], Path(positional[1]) if len(positional) == 2 else None, form


def start_kernel(argv: Sequence[str]) -> None:
    """Start the kernel the check on this command line will want, if it is a plain one."""
    parsed = parse(argv)
    if parsed is None:
        return
    name, notebook, form = parsed
    try:
        from mlgrade.config import OFFICIAL_FORMATS, resolve_settings

        if form in OFFICIAL_FORMATS:  # those draw a fresh seed: never the same settings
            return
        from mlgrade.assignments import get_assignment, resolve_assignments_dir

        a = get_assignment(resolve_assignments_dir(None), name)  # no --assignments: the default
        path = notebook if notebook is not None else Path(f"{a.name}.ipynb")
        if a.is_repository or not path.is_file():
            return
        settings = resolve_settings({}, a.limits, official=False)
        from mlgrade.sandbox import sandbox_soon

        sandbox = sandbox_soon(settings)  # bubblewrap's probe runs while the kernel's modules load
        from mlgrade.prestart import guess

        guess(a, settings, sandbox())
    except Exception:  # noqa: BLE001 - a guess never fails a command: the check meets the
        forget_kernel()  # problem itself; whatever started half-way is shut down


def forget_kernel() -> None:
    """Shut the guessed kernel down if the command did not take it (a usage error, --help)."""
    prestart = sys.modules.get("mlgrade.prestart")
    if prestart is not None:
        prestart.forget_guess()
