"""Output formats. Each renderer turns one :class:`GradeResult` into text.

Human formats go to stderr, machine formats to stdout (or ``--output FILE``). Adding a
format: a module with a ``render(result) -> str`` function, a member in :class:`Format`, and
an entry in ``_RENDERERS``; the test suite loops over every member.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from mlgrade.results import GradeResult


class Format(StrEnum):
    CONSOLE = "console"
    JSON = "json"

    @property
    def machine(self) -> bool:
        """Machine formats are written to stdout or ``--output``; human ones to stderr."""
        return self is not Format.CONSOLE


def renderer(fmt: Format) -> Callable[[GradeResult], str]:
    from mlgrade.render import console, json_format

    table: dict[Format, Callable[[GradeResult], str]] = {
        Format.CONSOLE: console.render_text,
        Format.JSON: json_format.render,
    }
    return table[fmt]
