"""The pytest plugin mlgrade loads into each grading run: fixtures and result collection."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlgrade.bridge.client import Notebook
from mlgrade.results import TestResult, TestStatus

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")
MAX_FEEDBACK = 600


def clean_text(text: str, limit: int = MAX_FEEDBACK) -> str:
    """Learner-visible text: no control characters, no workflow-command prefixes, capped."""
    text = _CONTROL.sub("", text).strip()
    text = re.sub(r"(?m)^\s*::", ": :", text)
    return text if len(text) <= limit else text[: limit - 12] + " [truncated]"


def title_from_doc(doc: str | None) -> str:
    """A test's title: the docstring's first paragraph joined into one line ("" without one).

    A long title wraps over several source lines; every report shows it whole."""
    paragraph = re.split(r"\n\s*\n", (doc or "").strip(), maxsplit=1)[0]
    return " ".join(paragraph.split())


def _title(item: pytest.Item) -> str:
    title = title_from_doc(getattr(getattr(item, "function", None), "__doc__", None))
    if title:
        return title
    name = item.name.removeprefix("test_")
    return name.replace("_", " ")


@dataclass
class _Pending:
    item: pytest.Item
    status: TestStatus = TestStatus.PASSED
    feedback: str = ""
    duration: float = 0.0
    grader_error: str | None = None


@dataclass
class MlgradePlugin:
    """Registered with ``pytest.main(plugins=[...])``; never auto-loaded elsewhere."""

    notebook: Notebook | None
    run_seed: int  # (fields must not share names with the fixtures below)
    run_job_dir: Path
    run_assignment_dir: Path
    results: list[TestResult] = field(default_factory=list)
    collection_errors: list[str] = field(default_factory=list)
    grader_errors: list[str] = field(default_factory=list)  # tracebacks, for --debug only
    interrupted: bool = False
    _pending: dict[str, _Pending] = field(default_factory=dict)

    # -- configuration and fixtures --------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "points(value, question=None): points a grader test is worth")
        # a failure's traceback without pytest's source excerpts (its terminal plugin, which
        # owns --tb, is off): only a grader error's is ever shown (--debug), and pytest's own
        # style re-parses the grader file for each failed test
        config.option.tbstyle = "native"

    @pytest.fixture(scope="session")
    def nb(self) -> Notebook:
        if self.notebook is None:
            raise RuntimeError("no notebook kernel is attached to this grading run")
        return self.notebook

    @pytest.fixture
    def rng(self, request: pytest.FixtureRequest) -> np.random.Generator:
        # seeded by the run's seed and the test's *name*: independent of order and install path
        digest = hashlib.sha256(request.node.name.encode()).digest()
        return np.random.default_rng([self.run_seed, int.from_bytes(digest[:8], "little")])

    @pytest.fixture(scope="session")
    def seed(self) -> int:
        return self.run_seed

    @pytest.fixture(scope="session")
    def job_dir(self) -> Path:
        return self.run_job_dir

    @pytest.fixture(scope="session")
    def assignment_dir(self) -> Path:
        return self.run_assignment_dir

    # -- result collection -----------------------------------------------------------------
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest also reports collection errors as an "interruption" (a subclass): only a
        # real Ctrl-C counts
        self.interrupted = excinfo.type is KeyboardInterrupt

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        pending = self._pending.setdefault(item.nodeid, _Pending(item))
        pending.duration += report.duration
        if call.excinfo is None or pending.status is not TestStatus.PASSED:
            return
        exc = call.excinfo.value
        if call.excinfo.errisinstance(pytest.skip.Exception):
            pending.status = TestStatus.FAILED
            pending.feedback = clean_text(str(getattr(exc, "msg", "")) or "not checked")
        elif isinstance(exc, AssertionError):
            pending.status = TestStatus.FAILED
            message = str(exc).strip()
            pending.feedback = clean_text(message or "this check failed.")
        else:
            pending.status = TestStatus.ERROR
            pending.feedback = (f"internal grader error ({type(exc).__name__}); no points awarded "
                                "for this test. Tell your instructor.")
            pending.grader_error = f"{item.nodeid} [{call.when}]: {report.longreprtext[-3000:]}"

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        pending = self._pending.pop(nodeid, None)
        if pending is None:
            return
        marker = pending.item.get_closest_marker("points")
        value = float(marker.args[0]) if marker and marker.args else 0.0
        question = marker.kwargs.get("question") if marker else None
        if pending.grader_error:
            self.grader_errors.append(pending.grader_error)
        self.results.append(TestResult(
            id=pending.item.name,
            title=_title(pending.item),
            question=question,
            points=value,
            earned=value if pending.status is TestStatus.PASSED else 0.0,
            status=pending.status,
            feedback=pending.feedback,
            duration_s=round(pending.duration, 3),
        ))
