"""Frozen result dataclasses that flow between pipeline stages and into every renderer.

``GradeResult.to_dict()`` is the stable JSON document (``docs/result-schema.json``);
``SCHEMA_VERSION`` changes only when that document changes incompatibly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlgrade._compat import StrEnum

SCHEMA_VERSION = "1.0"


class TestStatus(StrEnum):
    __test__ = False  # not a pytest test class

    PASSED = "passed"
    FAILED = "failed"  # the learner's answer is wrong, missing, too slow or unreadable
    ERROR = "error"  # the grader itself broke: no points, the submission is marked errored


class SubmissionStatus(StrEnum):
    GRADED = "graded"  # every grader ran; the score is meaningful
    ERRORED = "errored"  # grading could not finish (grader bug, sandbox failure): score is 0-safe


@dataclass(frozen=True)
class CellError:
    """A code cell of the learner's notebook that raised, timed out or killed the kernel."""

    # The one cell numbering of every report (console, JSON, Markdown, HTML, gradebook): the
    # n-th *code* cell, counted from 1, markdown cells not counted; run top to bottom in a fresh
    # kernel, that is the ``In [n]`` Jupyter shows next to it.
    cell: int
    ename: str
    evalue: str
    line: str | None = None  # the offending source line, when known


@dataclass(frozen=True)
class Execution:
    """What happened when the learner's notebook ran."""

    cells_total: int
    cells_run: int
    errors: tuple[CellError, ...] = ()
    timed_out: bool = False  # the whole-notebook time limit was hit
    kernel_restarts: int = 0
    output_truncated: bool = False
    duration_s: float = 0.0


@dataclass(frozen=True)
class TestResult:
    """One hidden grader test."""

    __test__ = False  # not a pytest test class

    id: str  # the test function name, stable across runs
    title: str  # a human title (the first docstring paragraph on one line, or derived from the id)
    question: str | None
    points: float  # points possible
    earned: float
    status: TestStatus
    feedback: str  # learner-facing line; never a traceback, never the expected value
    duration_s: float = 0.0


@dataclass(frozen=True)
class QuestionInfo:
    """A question of the assignment (``assignment.toml`` ``[[questions]]``): groups the rows."""

    id: str
    title: str


@dataclass(frozen=True)
class GradeResult:
    """The graded submission: the single input of every renderer."""

    assignment: str
    title: str
    notebook: str
    seed: int
    status: SubmissionStatus
    tests: tuple[TestResult, ...]
    execution: Execution
    duration_s: float
    isolation: str
    mlgrade_version: str
    grader_version: str
    reason: str | None = None  # why the submission errored, if it did
    notices: tuple[str, ...] = field(default=())
    questions: tuple[QuestionInfo, ...] = field(default=())  # in the assignment's order
    device: str = "none"  # the GPU(s) the sandbox gave the kernel ("GPU visible to the kernel")

    @property
    def score(self) -> float:
        return round(sum(t.earned for t in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(t.points for t in self.tests), 6)

    @property
    def full_marks(self) -> bool:
        return (
            self.status is SubmissionStatus.GRADED
            and bool(self.tests)
            and all(t.status is TestStatus.PASSED for t in self.tests)
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"schema_version": SCHEMA_VERSION, **data}
        data["score"] = self.score
        data["max_score"] = self.max_score
        return data
