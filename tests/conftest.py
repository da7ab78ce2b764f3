"""Shared test helpers. Tests use real kernels, real files and real SQLite: no mocks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from mlgrade.assignments import Assignment, default_assignments_dir, get_assignment
from mlgrade.config import resolve_settings
from mlgrade.pipeline import check_notebook
from mlgrade.results import GradeResult

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
FIXTURE_NOTEBOOKS = Path(__file__).parent / "notebooks"


def assignment(name: str) -> Assignment:
    return get_assignment(default_assignments_dir(), name)


def notebook_from_cells(*sources: str) -> NotebookNode:
    """A notebook whose code cells are ``sources``."""
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def replace_cell(nb: NotebookNode, marker: str, new_source: str) -> NotebookNode:
    """A copy of ``nb`` whose first code cell containing ``marker`` becomes ``new_source``:
    the way mutation tests turn a reference solution into a known-wrong one."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code" and marker in cell.source:
            cell.source = new_source
            return out
    raise AssertionError(f"no code cell contains {marker!r}")


def solution(name: str) -> NotebookNode:
    return nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)


def mutant(name: str, replacements: dict[str, str]) -> NotebookNode:
    """The reference solution of ``name`` with each code cell containing a marker (a key)
    replaced by its known-wrong source (the value)."""
    nb = solution(name)
    for marker, source in replacements.items():
        nb = replace_cell(nb, marker, source)
    return nb


def feedback_by_test(result: GradeResult) -> dict[str, str]:
    return {t.id: t.feedback for t in result.tests}


@pytest.fixture(scope="session")
def built_dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, sdist) of this checkout, built once per session (tests/install_support.py)."""
    from tests.install_support import build_dist

    return build_dist(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def wheel_venv(built_dist: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (this Python, no constraints file, no extras) with the built wheel installed."""
    from tests.install_support import base_python, fresh_venv

    return fresh_venv(base_python(), tmp_path_factory.mktemp("venv") / "fresh", built_dist[0])


@pytest.fixture
def grade(tmp_path: Path) -> Callable[..., GradeResult]:
    """``grade("month2", nb_or_path, seed=..., **settings)`` -> GradeResult (real kernel)."""

    def run(name: str, nb: NotebookNode | Path, **overrides: object) -> GradeResult:
        if isinstance(nb, Path):
            path = nb
        else:
            path = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.ipynb"
            nbformat.write(nb, path)
        a = assignment(name)
        settings = resolve_settings(overrides, a.limits)
        return check_notebook(path, a, settings).result

    return run


def validated_runs(name: str) -> tuple[GradeResult, GradeResult, GradeResult]:
    """Run `mlgrade validate`'s checks on an assignment (solution twice, then the starter),
    assert that every check passed, and return the three results for further assertions."""
    import dataclasses

    from mlgrade.validate import validate_assignment

    # reference solutions are not installed with the package: use the checkout's
    a = dataclasses.replace(assignment(name), solution=SOLUTIONS / f"{name}.ipynb")
    settings = resolve_settings({}, a.limits)
    results: list[GradeResult] = []

    def grade(path: Path) -> GradeResult:
        result = check_notebook(path, a, settings).result
        results.append(result)
        return result

    report = validate_assignment(a, settings, grade)
    assert [(c.name, c.detail) for c in report.failed] == []
    solution_run, again, starter = results
    return solution_run, again, starter


def failed_tests(result: GradeResult) -> set[str]:
    return {t.id for t in result.tests if t.status != "passed"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``clean_process`` run first: they start ``mlgrade`` as a child of this
    process and check what it leaves behind, so they run before hundreds of other tests have
    left kernels' sockets and threads in the pytest process. Otherwise the order is kept."""
    items.sort(key=lambda item: item.get_closest_marker("clean_process") is None)


def default_signals() -> None:
    """``preexec_fn`` for a child ``mlgrade``: every signal's handling back to its default, so a
    Ctrl-C sent by a test reaches it as a terminal's would, even when this test run was started
    in the background (a shell then ignores SIGINT, and children inherit that)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
