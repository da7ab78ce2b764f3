"""Grade stage: run an assignment's hidden pytest graders in this (grader) process."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlgrade.bridge.client import Notebook
from mlgrade.grading.plugin import MlgradePlugin
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


def run_graders(graders: Path, notebook: Notebook | None, seed: int, job_dir: Path,
                assignment_dir: Path) -> GraderRun:
    """Run every grader test; results are collected by :class:`MlgradePlugin`."""
    plugin = MlgradePlugin(notebook=notebook, run_seed=seed, run_job_dir=job_dir,
                           run_assignment_dir=assignment_dir)
    sink = io.StringIO()
    with _isolated_pytest(graders), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = pytest.main(grader_args(graders), plugins=[plugin])
    if plugin.interrupted:
        raise KeyboardInterrupt  # Ctrl-C during grading: pytest swallowed it, pass it on
    error = None
    if plugin.collection_errors:
        error = "the graders could not be loaded: " + plugin.collection_errors[0].splitlines()[-1][:300]
    elif code == pytest.ExitCode.NO_TESTS_COLLECTED or not plugin.results:
        error = f"no grader tests found in {graders}"
    elif code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        error = f"the grader run stopped ({code.name}): {sink.getvalue().strip()[-300:]}"
    return GraderRun(tuple(plugin.results), error,
                     tuple(plugin.grader_errors) + tuple(plugin.collection_errors))
