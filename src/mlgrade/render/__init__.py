"""Output formats. Each renderer turns one :class:`GradeResult` into text.

Human formats go to stderr, machine formats to stdout (or ``--output FILE``). Adding a
format: a module with a ``render(result) -> str`` function, a member in :class:`Format`, and
an entry in the table of :func:`renderer`; the test suite loops over every member, so a member
without a golden file fails. ``docs/platforms.md`` describes each platform format.
"""

from __future__ import annotations

from collections.abc import Callable

from mlgrade._compat import StrEnum
from mlgrade.results import GradeResult


class Format(StrEnum):
    CONSOLE = "console"  # rich table for people, on stderr
    JSON = "json"  # the stable documented schema (docs/result-schema.json)
    MARKDOWN = "markdown"  # GitHub-flavoured Markdown (job summaries, issues, gradebooks)
    HTML = "html"  # a self-contained, escaped HTML page (open it in a browser)
    JUNIT = "junit"  # JUnit XML for CI test-report tools (GitHub, GitLab, Jenkins' JUnit plugin)
    JUNIT_JENKINS = "junit-jenkins"  # JUnit XML valid against the Jenkins xUnit plugin's junit-10.xsd
    GRADESCOPE = "gradescope"  # Gradescope autograder results.json
    PRAIRIELEARN = "prairielearn"  # PrairieLearn external-grader results.json
    CLASSROOM = "classroom"  # GitHub Classroom reporter step outputs (base64 JSON per runner)

    @property
    def machine(self) -> bool:
        """Machine formats are written to stdout or ``--output``; human ones to stderr."""
        return self is not Format.CONSOLE


def renderer(fmt: Format) -> Callable[[GradeResult], str]:
    """The ``render(result) -> str`` function of a format."""
    from mlgrade.render import (
        classroom,
        console,
        gradescope,
        html,
        json_format,
        junit,
        markdown,
        prairielearn,
    )

    table: dict[Format, Callable[[GradeResult], str]] = {
        Format.CONSOLE: console.render_text,
        Format.JSON: json_format.render,
        Format.MARKDOWN: markdown.render,
        Format.HTML: html.render,
        Format.JUNIT: junit.render,
        Format.JUNIT_JENKINS: junit.render_jenkins,
        Format.GRADESCOPE: gradescope.render,
        Format.PRAIRIELEARN: prairielearn.render,
        Format.CLASSROOM: classroom.render,
    }
    return table[fmt]
