"""Small helpers shared by the renderers: points formatting, truncation, status words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlgrade.results import GradeResult, SubmissionStatus, TestResult, TestStatus

TRUNCATION_MARKER = " … [truncated by mlgrade]"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WORKFLOW_COMMAND = re.compile(r"(?m)^(\s*)::")


def clean(text: str) -> str:
    """Learner-visible text for a platform: no terminal escapes or control characters, and
    no line that a GitHub Actions log would run as a workflow command (``::error::...``)."""
    text = _CONTROL.sub("", _ANSI.sub("", text))
    return _WORKFLOW_COMMAND.sub(r"\1: :", text)


def fmt_points(value: float) -> str:
    """``2.0`` -> ``"2"``, ``0.5`` -> ``"0.5"``; never scientific notation for points."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def truncate(text: str, limit: int, marker: str = TRUNCATION_MARKER) -> str:
    """Clean ``text`` and cut it to at most ``limit`` characters, ending with ``marker`` when
    cut."""
    text = clean(text)
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(marker))
    return text[:keep].rstrip() + marker


def truncate_utf8(text: str, limit_bytes: int, marker: str = TRUNCATION_MARKER) -> str:
    """Like :func:`truncate`, but ``limit_bytes`` counts UTF-8 bytes (for size-capped consumers)."""
    text = clean(text)
    data = text.encode("utf-8")
    if len(data) <= limit_bytes:
        return text
    room = max(0, limit_bytes - len(marker.encode("utf-8")))
    return data[:room].decode("utf-8", errors="ignore").rstrip() + marker


def could_not_run(result: GradeResult) -> bool:
    """The submission errored before any grader test produced a result."""
    return result.status is SubmissionStatus.ERRORED and not result.tests


def errored_reason(result: GradeResult) -> str:
    """The learner-facing sentence for an errored submission."""
    return result.reason or "grading could not finish"


def status_word(status: TestStatus) -> str:
    words = {TestStatus.PASSED: "passed", TestStatus.FAILED: "failed", TestStatus.ERROR: "error"}
    return words[status]


# The bridge's feedback for a stub that still raises NotImplementedError (mlgrade.bridge.client)
NOT_IMPLEMENTED_MARK = "(it raises NotImplementedError)"
# feedback about an answer the learner has not set yet (the starter's `None  # TODO`)
_STILL_NONE = re.compile(r"\bNone(Type)?\b")


@dataclass(frozen=True)
class QuestionGroup:
    """The rows of one question, in run order: how every human report groups its tests."""

    id: str | None  # None: tests that belong to no question
    title: str
    tests: tuple[TestResult, ...]

    @property
    def label(self) -> str:
        """``q3`` -> ``Q3``; tests of no question are "other checks"."""
        if self.id is None:
            return "--"
        return self.id.upper() if len(self.id) <= 4 else self.id

    @property
    def earned(self) -> float:
        return round(sum(t.earned for t in self.tests), 6)

    @property
    def points(self) -> float:
        return round(sum(t.points for t in self.tests), 6)

    @property
    def passed(self) -> bool:
        return all(t.status is TestStatus.PASSED for t in self.tests)

    @property
    def not_started(self) -> bool:
        """Every test failed on the starter's placeholders: a stub that still raises
        NotImplementedError (at least one), or an answer still ``None  # TODO`` (a question's
        value is often computed with its functions, so one placeholder follows the other)."""
        stubs = [NOT_IMPLEMENTED_MARK in t.feedback for t in self.tests]
        return bool(self.tests) and any(stubs) and all(
            t.status is TestStatus.FAILED and (stub or _STILL_NONE.search(t.feedback))
            for t, stub in zip(self.tests, stubs, strict=True))


def question_groups(result: GradeResult) -> list[QuestionGroup]:
    """The tests grouped by question: the assignment's questions in their order, then questions
    only the graders name, then tests of no question."""
    titles = {q.id: q.title for q in result.questions}
    order = [q.id for q in result.questions]
    for t in result.tests:
        if t.question is not None and t.question not in order:
            order.append(t.question)
    groups = [QuestionGroup(q, titles.get(q, ""), tuple(t for t in result.tests if t.question == q))
              for q in order]
    groups = [g for g in groups if g.tests]
    rest = tuple(t for t in result.tests if t.question is None)
    if rest:
        groups.append(QuestionGroup(None, "other checks", rest))
    return groups
