"""``--format classroom``: step outputs for GitHub Classroom's autograding reporter.

The reporter (``classroom-resources/autograding-grading-reporter@v1``) reads one environment
variable ``<RUNNER>_RESULTS`` per runner id in its ``runners`` input; each holds standard
base64 of a UTF-8 JSON document ``{version, status, max_score, tests[]}``. How it behaves
shapes this format:

* its summary table counts *passed tests* x ``max_score`` / number of tests, while the points
  sent to Classroom are the sum of the tests' ``score``: so every grader test is its own runner
  holding exactly one all-or-nothing test, and both numbers agree;
* it crashes on a missing or empty ``tests`` array and on a missing variable: every runner the
  workflow lists always gets a document with one test, even when the notebook could not run;
* points are sent as numbers (integers when whole), never strings;
* the job fails only on a top-level ``status`` of exactly ``"fail"`` or ``"error"``;
* runner ids must match ``^[a-zA-Z0-9]+$``; a single environment value over 128 KiB cannot
  start the process, so messages are capped (``MESSAGE_LIMIT_BYTES``).

``render(result)`` prints ``<runner>_result=<base64>`` lines, the exact lines that
``mlgrade check --format classroom`` appends to ``$GITHUB_OUTPUT`` inside GitHub Actions.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mlgrade.render.common import could_not_run, errored_reason, truncate_utf8
from mlgrade.results import GradeResult, TestResult, TestStatus

PAYLOAD_VERSION = 1
MESSAGE_LIMIT_BYTES = 8 * 1024  # one runner's variable stays far below the 128 KiB limit
RUNNER_ID_LIMIT = 40
OUTPUT_SUFFIX = "_result"
_STATUS = {TestStatus.PASSED: "pass", TestStatus.FAILED: "fail", TestStatus.ERROR: "error"}
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class GraderTest:
    """A grader test as known before grading (collected from the graders, no notebook)."""

    id: str
    title: str
    question: str | None
    points: float


@dataclass(frozen=True)
class Runner:
    """One reporter runner: exactly one grader test."""

    id: str  # plain alphanumeric, the reporter's runner id
    test: GraderTest

    @property
    def output_name(self) -> str:
        """The step output that carries this runner's document."""
        return self.id + OUTPUT_SUFFIX

    @property
    def env_name(self) -> str:
        """The variable the reporter reads for this runner."""
        return self.id.upper() + "_RESULTS"


def runner_slug(test_id: str, question: str | None) -> str:
    """``test_dot_product[3]`` in ``q2`` -> ``q2dotproduct3``; starts with a letter."""
    base = _NON_ALNUM.sub("", (question or "").lower())
    base += _NON_ALNUM.sub("", test_id.lower().removeprefix("test_").removeprefix("test"))
    if not base or not base[0].isalpha():
        base = "t" + base
    return base[:RUNNER_ID_LIMIT]


def runners_for(tests: Iterable[GraderTest]) -> tuple[Runner, ...]:
    """Deterministic, unique runner ids in grader order (the workflow and the outputs must
    compute the same ids from the same list)."""
    taken: set[str] = set()
    runners = []
    for test in tests:
        slug = runner_slug(test.id, test.question)
        candidate, n = slug, 2
        while candidate in taken:
            suffix = str(n)
            candidate = slug[: RUNNER_ID_LIMIT - len(suffix)] + suffix
            n += 1
        taken.add(candidate)
        runners.append(Runner(candidate, test))
    return tuple(runners)


def grader_test(t: TestResult) -> GraderTest:
    return GraderTest(id=t.id, title=t.title, question=t.question, points=t.points)


def points(value: float) -> int | float:
    """Whole points as integers; others rounded for display (the reporter prints raw sums)."""
    return int(round(value)) if abs(value - round(value)) < 1e-9 else round(value, 2)


def payload(runner: Runner, test: TestResult | None, missing_reason: str) -> dict[str, Any]:
    """The JSON document of one runner. ``test`` is None when the graded result lacks it."""
    score: int | float = 0
    if test is None:
        status = "error"
        message = f"not graded: {missing_reason}"
    else:
        status, score = _STATUS[test.status], points(test.earned)
        message = test.feedback or ("passed" if test.status is TestStatus.PASSED else "no points")
    return {
        "version": PAYLOAD_VERSION,
        "status": status,
        "max_score": points(runner.test.points),
        "tests": [{
            "name": truncate_utf8(runner.test.title, 512),
            "status": status,
            "score": score,
            "message": truncate_utf8(message, MESSAGE_LIMIT_BYTES),
            "line_no": 0,
            "test_code": runner.test.id,
        }],
    }


def encode(document: dict[str, Any]) -> str:
    text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def outputs(result: GradeResult, expected: Sequence[GraderTest] | None = None) -> dict[str, str]:
    """Step output name -> base64 document, one per runner.

    ``expected`` is the assignment's collected grader tests (what the workflow lists); tests
    missing from ``result`` (the notebook could not run) are sent as errored, 0 points.
    """
    by_id = {t.id: t for t in result.tests}
    listed = list(expected) if expected else []
    listed_ids = {g.id for g in listed}
    listed += [grader_test(t) for t in result.tests if t.id not in listed_ids]
    if could_not_run(result):
        reason = f"your notebook could not be graded: {errored_reason(result)}"
    else:
        reason = "this grader test did not run"
    runners = runners_for(listed)
    if not runners:  # nothing known at all: still hand the reporter a readable failure
        runners = runners_for([GraderTest("notebook", "the notebook could be graded", None, 0)])
    return {r.output_name: encode(payload(r, by_id.get(r.test.id), reason)) for r in runners}


def output_lines(values: dict[str, str]) -> str:
    """``name=value`` lines, the ``$GITHUB_OUTPUT`` syntax (base64 never holds a newline)."""
    return "".join(f"{name}={value}\n" for name, value in values.items())


def render(result: GradeResult) -> str:
    return output_lines(outputs(result))
