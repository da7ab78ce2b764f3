"""Grade stage: run an assignment's hidden pytest graders in this (grader) process."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlgrade.bridge.client import Notebook
from mlgrade.config import DEFAULT_SEED
from mlgrade.grading.checks import public_seed
from mlgrade.grading.child import grading_deadline
from mlgrade.grading.plugin import MlgradePlugin, _title
from mlgrade.results import TestResult

_INI = Path(__file__).with_name("grader.ini")


@dataclass(frozen=True)
class GraderRun:
    tests: tuple[TestResult, ...]
    error: str | None  # why the graders could not run, if they could not
    grader_errors: tuple[str, ...]  # tracebacks of grader bugs (for --debug, never learners)


def grader_args(graders: Path) -> list[str]:
    return [
        str(graders), "-c", str(_INI), "--rootdir", str(graders), "--confcutdir", str(graders),
        "--import-mode=importlib", "--assert=plain", "--capture=sys",
        "-p", "no:cacheprovider", "-p", "no:stepwise", "-p", "no:terminal", "-p", "no:logging",
        # its end of session runs gc.collect() over everything the graders' libraries made
        # (0.1 s and more per check); _unraisable_recorded takes its place
        "-p", "no:unraisableexception",
        "-W", "ignore::DeprecationWarning", "--strict-markers",
    ]


@contextlib.contextmanager
def _isolated_pytest(graders: Path) -> Iterator[None]:
    """Run a nested pytest that is independent of whatever runs around it.

    - no third-party plugin autoload;
    - no assertion rewriting, even by an enclosing pytest (mlgrade's own test suite): only the
      grader's message may reach the learner;
    - grader modules are forgotten afterwards, so the next run (another assignment, or a changed
      grader) imports its own files, not a stale module of the same name.
    """
    old = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    rewriters = [h for h in sys.meta_path if type(h).__name__ == "AssertionRewritingHook"]
    for hook in rewriters:
        sys.meta_path.remove(hook)
    before = set(sys.modules)
    try:
        yield None
    finally:
        root = str(graders.resolve())
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules.get(name), "__file__", None) or ""
            if origin.startswith(root):
                del sys.modules[name]
        sys.meta_path[:0] = rewriters
        if old is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = old


Progress = Callable[[int, int, str], None]  # test k (1-based) of n is starting; its title


@dataclass
class _Selection:
    """Keeps only the chosen questions' tests, and reports "test k of n" as they start."""

    questions: Collection[str] | None
    progress: Progress | None
    _titles: dict[str, str] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)

    @pytest.hookimpl(trylast=True)  # after every other plugin has (de)selected
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.questions is not None:
            wanted = set(self.questions)
            keep: list[pytest.Item] = []
            drop: list[pytest.Item] = []
            for item in items:
                marker = item.get_closest_marker("points")
                question = marker.kwargs.get("question") if marker is not None else None
                (keep if question in wanted else drop).append(item)
            if drop:
                config.hook.pytest_deselected(items=drop)
                items[:] = keep
        self._order = [item.nodeid for item in items]
        self._titles = {item.nodeid: _title(item) for item in items}

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.progress is not None and nodeid in self._titles:
            self.progress(self._order.index(nodeid) + 1, len(self._order), self._titles[nodeid])


def run_graders(graders: Path, notebook: Notebook | None, seed: int, job_dir: Path,
                assignment_dir: Path, *, questions: Collection[str] | None = None,
                progress: Progress | None = None) -> GraderRun:
    """Run the grader tests (only those of ``questions``, when given); results are collected by
    :class:`MlgradePlugin`, and ``progress`` hears of each test as it starts."""
    plugin = MlgradePlugin(notebook=notebook, run_seed=seed, run_job_dir=job_dir,
                           run_assignment_dir=assignment_dir)
    selection = _Selection(questions, progress)
    sink = io.StringIO()
    # stdout may carry a machine format: keep pytest off it. stderr is left alone because this
    # runs in a thread beside the CLI's progress display, which writes there.
    left = notebook.remaining() if notebook is not None else None
    unraisable: list[str] = []
    with (_isolated_pytest(graders), contextlib.redirect_stdout(sink), grading_deadline(left),
          public_seed(seed == DEFAULT_SEED), _unraisable_recorded(unraisable)):
        code = pytest.main(grader_args(graders), plugins=[plugin, selection])
    if plugin.interrupted:
        raise KeyboardInterrupt  # Ctrl-C during grading: pytest swallowed it, pass it on
    error = None
    if plugin.collection_errors:
        error = "the graders could not be loaded: " + plugin.collection_errors[0].splitlines()[-1][:300]
    elif code == pytest.ExitCode.NO_TESTS_COLLECTED or not plugin.results:
        error = (f"no grader tests found in {graders}" if questions is None
                 else f"no grader tests for {', '.join(questions)} in {graders}")
    elif code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        error = f"the grader run stopped ({pytest.ExitCode(code).name}): {sink.getvalue().strip()[-300:]}"
    return GraderRun(tuple(plugin.results), error,
                     tuple(plugin.grader_errors) + tuple(plugin.collection_errors)
                     + tuple(unraisable))


@contextlib.contextmanager
def _unraisable_recorded(into: list[str]) -> Iterator[None]:
    """While the graders run, an exception Python cannot raise (in a finalizer, say) is noted
    in ``into`` (shown with --debug) instead of printed beside the report."""
    previous = sys.unraisablehook

    def note(unraisable: Any) -> None:
        where = type(unraisable.object).__name__ if unraisable.object is not None else "?"
        into.append(f"an exception Python could not raise, in {where}: "
                    f"{getattr(unraisable.exc_type, '__name__', '?')}: "
                    f"{str(unraisable.exc_value)[:200]}")

    sys.unraisablehook = note
    try:
        yield
    finally:
        sys.unraisablehook = previous


@dataclass(frozen=True)
class CollectedTest:
    """One grader test as collected, before anything runs (no kernel, no notebook)."""

    id: str
    title: str
    question: str | None
    points: float | None  # None: the test has no @points marker
    file: str
    has_docstring: bool


@dataclass
class _Collector:
    tests: list[CollectedTest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            text = report.longreprtext.strip()
            self.errors.append(f"{report.nodeid}: {text.splitlines()[-1][:300] if text else 'error'}")

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            doc = getattr(getattr(item, "function", None), "__doc__", None)
            marker = item.get_closest_marker("points")
            value = float(marker.args[0]) if marker is not None and marker.args else None
            question = marker.kwargs.get("question") if marker is not None else None
            self.tests.append(CollectedTest(
                id=item.name, title=_title(item), question=None if question is None else str(question),
                points=value, file=item.path.name, has_docstring=bool(doc and doc.strip()),
            ))


def collect_graders(graders: Path) -> tuple[tuple[CollectedTest, ...], tuple[str, ...]]:
    """The grader tests of a folder in run order, found the way grading finds them, and the
    collection errors, if any."""
    collector = _Collector()
    # MlgradePlugin registers the `points` marker (the run is --strict-markers)
    registrar = MlgradePlugin(notebook=None, run_seed=0, run_job_dir=graders,
                              run_assignment_dir=graders)
    sink = io.StringIO()
    with _isolated_pytest(graders), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = pytest.main([*grader_args(graders), "--collect-only"], plugins=[registrar, collector])
    errors = list(collector.errors)
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR) and not errors:
        errors.append(f"pytest stopped ({pytest.ExitCode(code).name}): {sink.getvalue().strip()[-300:]}")
    return tuple(collector.tests), tuple(errors)
