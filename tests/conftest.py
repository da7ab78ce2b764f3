"""Shared test helpers. Tests use real kernels, real files and real SQLite: no mocks."""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import hashlib
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook
from tests.probes import pytest_runtest_setup  # noqa: F401 - the hook: missing under CI=true fails

from mlgrade.assignments import Assignment, default_assignments_dir, get_assignment
from mlgrade.config import Settings, resolve_settings
from mlgrade.pipeline import check_notebook
from mlgrade.results import GradeResult

REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist several workers grade at once: like a batch's workers (batch/workers.py),
# each worker's kernels get an equal share of the cores for their BLAS and torch threads
# instead of a thread per core each. A developer's own setting wins.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    from mlgrade.batch.workers import THREAD_VARIABLES, cpu_count

    _share = str(max(1, cpu_count() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in THREAD_VARIABLES:
        os.environ.setdefault(_name, _share)
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


@pytest.fixture(scope="session")
def capstone_reference() -> GradeResult:
    """The reference capstone repository (solutions/capstone, only read) graded once per session
    in the real sandbox, for the tests that read its report in each format (mark them
    ``xdist_group("capstone-reference")`` so that one worker grades it)."""
    from mlgrade.repo.check import check_repository

    a = assignment("capstone")
    return check_repository(SOLUTIONS / "capstone", a, resolve_settings({}, a.limits)).result


@pytest.fixture
def grade(tmp_path: Path) -> Callable[..., GradeResult]:
    """``grade("month2", nb_or_path, seed=..., **settings)`` -> GradeResult (real kernel).

    Graded once per session: the same notebook, assignment and settings give the result of
    the first grading (see :func:`graded_once`)."""

    def run(name: str, nb: NotebookNode | Path, **overrides: object) -> GradeResult:
        if isinstance(nb, Path):
            nb = nbformat.read(nb, as_version=4)
        return graded_once(name, nb, tmp_path, **overrides)

    return run


# -- grade each notebook once per test session ------------------------------------------------
# Several tests read the verdict on the same notebook (a month's solution and starter are
# graded by its grader tests, the in-notebook agreement test and `validate`'s checks): the
# first grading is kept, keyed by assignment, notebook content and resolved settings, and
# shared. Under pytest-xdist the store is a folder all workers of the run share, each entry
# written once under a lock, so a notebook is graded once per run, not once per worker.
_shared_store: Path | None = None
_memory_store: dict[str, GradeResult] = {}


@pytest.fixture(scope="session", autouse=True)
def _graded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    global _shared_store
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-N/: this run's, shared by its workers
    _shared_store = base / "graded-once"
    _shared_store.mkdir(exist_ok=True)
    yield
    _shared_store = None


def _grading_key(name: str, nb: NotebookNode, settings: Settings) -> str:
    content = nbformat.writes(nb).encode()
    return hashlib.sha256(b"\0".join([name.encode(), content, repr(settings).encode()])).hexdigest()


def graded_once(name: str, nb: NotebookNode, folder: Path, *, assignment_: Assignment | None = None,
                **overrides: object) -> GradeResult:
    """The verdict on ``nb`` for assignment ``name`` with ``overrides``, graded through the real
    pipeline the first time this run asks and shared after that. The notebook is written under
    ``folder`` (the result names that path either way)."""
    a = assignment_ or assignment(name)
    settings = resolve_settings(overrides, a.limits)
    key = _grading_key(name, nb, settings)
    path = folder / f"{name}-{key[:12]}.ipynb"
    if not path.exists():
        nbformat.write(nb, path)
    cached = _memory_store.get(key)
    if cached is None:
        if _shared_store is None:
            cached = check_notebook(path, a, settings).result
        else:
            with open(_shared_store / f"{key}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be grading it now
                stored = _shared_store / f"{key}.pickle"
                if stored.exists():
                    cached = pickle.loads(stored.read_bytes())
                else:
                    cached = check_notebook(path, a, settings).result
                    stored.write_bytes(pickle.dumps(cached))
        _memory_store[key] = cached
    return dataclasses.replace(cached, notebook=str(path))


def validated_runs(name: str, folder: Path) -> tuple[GradeResult, GradeResult, GradeResult]:
    """Run `mlgrade validate`'s checks on an assignment (solution twice, then the starter),
    assert that every check passed, and return the three results for further assertions.

    The first solution run and the starter's come from :func:`graded_once` (the same verdicts
    other tests read); the second solution run is always a fresh grading, so the determinism
    check compares two real runs."""
    from mlgrade.validate import validate_assignment

    # reference solutions are not installed with the package: use the checkout's
    a = dataclasses.replace(assignment(name), solution=SOLUTIONS / f"{name}.ipynb")
    settings = resolve_settings({}, a.limits)
    results: list[GradeResult] = []

    def grade(path: Path) -> GradeResult:
        nb = nbformat.read(path, as_version=4)
        if path == a.solution and results:  # the determinism check's second run
            result = check_notebook(path, a, settings).result
        else:
            result = graded_once(name, nb, folder, assignment_=a)
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
