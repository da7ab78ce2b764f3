"""The whole flow for one notebook, in one place::

    read (notebook) -> job folder -> kernel (sandbox) -> execute -> graders (bridge) -> score

Each stage lives in its own module; this file only wires them. Renderers take the
:class:`GradeResult` this returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat import NotebookNode

from mlgrade import __version__
from mlgrade.assignments import Assignment, require_packages
from mlgrade.bridge.dispatch import KernelDispatcher
from mlgrade.config import Settings
from mlgrade.errors import NotebookInputError
from mlgrade.execute import run_notebook
from mlgrade.fsutil import open_atomic
from mlgrade.hints import point_at_broken_cells
from mlgrade.jobfolder import job_folder, shield
from mlgrade.kernel import KernelSession
from mlgrade.notebook import read_notebook
from mlgrade.results import Execution, GradeResult, SubmissionStatus
from mlgrade.sandbox import UNISOLATED_NOTICE, Sandbox, choose_sandbox
from mlgrade.sandbox.gpu import describe_kernel
from mlgrade.score import score

if TYPE_CHECKING:
    from mlgrade.grading.runner import GraderRun
    from mlgrade.prestart import PrestartedKernel

@dataclass(frozen=True)
class Progress:
    """What grading is doing now, for a progress display (the core never draws one)."""

    stage: str  # read, execute, grade, score
    cell: int = 0  # execute: the code cell starting, numbered as in reports (1-based) ...
    cells: int = 0  # ... of this many code cells
    line: str = ""  # its first line
    timeout: float = 0.0  # its time limit in seconds
    test: int = 0  # grade: the grader test starting (1-based) ...
    tests: int = 0  # ... of this many
    title: str = ""  # its title

    def __str__(self) -> str:
        return self.stage


# told of each stage as it starts, each code cell and each grader test (the last from the
# graders' thread): it must be quick and thread-safe
Observer = Callable[[Progress], None]


def _noop(progress: Progress) -> None:
    return None


@dataclass(frozen=True)
class Checked:
    """A graded submission plus what only the CLI needs (debug details)."""

    result: GradeResult
    grader_errors: tuple[str, ...]


# after the grading deadline, how long the graders' thread gets to notice the kernel is gone
JOIN_GRACE_S = 10.0


class _GraderThread(threading.Thread):
    """Runs the graders' pytest session; its results (or its exception) wait for ``join``.

    pytest, NumPy and the grader modules are imported here, off the main thread's path to
    starting the kernel.
    """

    def __init__(self, assignment: Assignment, kernel: KernelDispatcher, settings: Settings,
                 job: Path, questions: tuple[str, ...] | None = None,
                 observer: Observer = _noop) -> None:
        super().__init__(name="mlgrade-graders", daemon=True)
        self._assignment, self._kernel, self._settings, self._job = assignment, kernel, settings, job
        self._questions, self._observer = questions, observer
        self.serving = threading.Event()  # set once the notebook has run
        self.latest: Progress | None = None
        self.result: GraderRun | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            from mlgrade.bridge.client import Notebook
            from mlgrade.grading.runner import run_graders

            s = self._settings
            bridge = Notebook(self._kernel, s.call_timeout, s.max_result_bytes)
            def tell(k: int, n: int, title: str) -> None:
                # the first test starts (and waits for the kernel) while the notebook still
                # runs: hold its news until grading really begins
                self.latest = Progress("grade", test=k, tests=n, title=title)
                if self.serving.is_set():
                    self._observer(self.latest)

            self.result = run_graders(self._assignment.graders, bridge, s.seed, self._job,
                                      self._assignment.folder, questions=self._questions,
                                      progress=tell)
        except BaseException as exc:  # handed to the main thread
            self.error = exc


def grade_in_kernel(nb: NotebookNode, assignment: Assignment, settings: Settings,
                    sandbox: Sandbox, observer: Observer = _noop,
                    questions: tuple[str, ...] | None = None,
                    prestarted: PrestartedKernel | None = None,
                    prepare: Callable[[Path], None] | None = None) -> tuple[Execution, GraderRun]:
    """Execute the notebook, then let the graders question the live kernel.

    The graders' pytest session starts at once in a thread (configuration, collection) while
    the kernel boots and the notebook runs; its first question to the kernel waits until then.
    A ``prestarted`` kernel (its own folder and sandbox, see :mod:`mlgrade.prestart`) is used
    instead of starting one. ``prepare(job)`` fills the job folder before the kernel starts
    (a repository assignment copies the repository there).
    """
    with _folders(assignment, prestarted) as (job, run):
        if prepare is not None:
            prepare(job)
        kernel = KernelDispatcher(job, settings.grading_timeout)
        stdout = sys.stdout  # the graders' run redirects it while pytest runs
        graders = _GraderThread(assignment, kernel, settings, job, questions, observer)
        graders.start()
        try:
            with _session(nb, job, run, settings, sandbox, prestarted) as session:
                observer(Progress("execute"))

                def cell(number: int, total: int, line: str, limit: float) -> None:
                    observer(Progress("execute", cell=number, cells=total, line=line, timeout=limit))

                execution = run_notebook(session, nb, settings, on_cell=cell)
                observer(Progress("grade"))
                graders.serving.set()
                if graders.latest is not None:
                    observer(graders.latest)
                kernel.serve(session, graders)
        finally:
            kernel.close()
            graders.join(max(kernel.remaining(), 0.0) + JOIN_GRACE_S)
    if graders.is_alive():  # stuck outside the kernel (e.g. in a reader): a verdict, not a hang
        sys.stdout = stdout  # the report must not go to the stuck run's capture
        return execution, _overran(settings)
    if graders.error is not None:
        raise graders.error
    if graders.result is None:
        raise RuntimeError("the graders' thread ended without a result")
    return execution, graders.result


def _folders(assignment: Assignment,
             prestarted: PrestartedKernel | None) -> contextlib.AbstractContextManager[tuple[Path, Path]]:
    return job_folder(assignment) if prestarted is None else prestarted.folders()


def _session(nb: NotebookNode, job: Path, run: Path, settings: Settings, sandbox: Sandbox,
             prestarted: PrestartedKernel | None) -> contextlib.AbstractContextManager[KernelSession]:
    """The notebook's kernel: started now, or the pre-started one, handed ``nb``."""
    if prestarted is None:
        return KernelSession(nb, job, run, settings, sandbox)
    return prestarted.session(nb)


def _overran(settings: Settings) -> GraderRun:
    from mlgrade.grading.runner import GraderRun

    return GraderRun((), f"grading did not finish within its {settings.grading_timeout:g} s "
                         "limit; nothing was scored", ())


def check_notebook(path: Path, assignment: Assignment, settings: Settings, *,
                   save_executed: Path | None = None, observer: Observer = _noop,
                   sandbox: Sandbox | None = None,
                   questions: tuple[str, ...] | None = None,
                   prestarted: PrestartedKernel | None = None) -> Checked:
    """Run and grade one notebook file. The file itself is only ever read. With
    ``questions``, only those questions' graders run (the notebook still runs in full). With
    ``prestarted``, that kernel (and its sandbox) runs it."""
    start = time.perf_counter()
    if save_executed is not None and save_executed.resolve() == path.resolve():
        raise NotebookInputError(
            "--save-executed must not be the notebook being graded: pick another file name."
        )
    observer(Progress("read"))
    nb, _raw = read_notebook(path)
    require_packages(assignment)  # a month whose packages are missing: exit 3 before any cell
    sandbox = prestarted.sandbox if prestarted else sandbox or choose_sandbox(settings)
    shield(sandbox, assignment)  # the kernel must not see this assignment's graders
    execution, graders = grade_in_kernel(nb, assignment, settings, sandbox, observer, questions,
                                         prestarted)
    graders = point_at_broken_cells(graders, nb, execution)  # hints name the cell that broke
    observer(Progress("score"))
    result = score(
        assignment=assignment, notebook=str(path), settings=settings, execution=execution,
        graders=graders, duration_s=time.perf_counter() - start,
        isolation=getattr(sandbox, "isolation", sandbox.tier),
        mlgrade_version=__version__,
    )
    if sandbox.tier == "none":
        result = dataclasses.replace(result, notices=(UNISOLATED_NOTICE, *result.notices))
    device, notes = describe_kernel(sandbox, settings)  # the GPU it got; memory limit on GPU boxes
    result = dataclasses.replace(result, device=device, notices=(*result.notices, *notes))
    if save_executed is not None:
        write_notebook_atomic(nb, save_executed)
    return Checked(result, graders.grader_errors)


def write_notebook_atomic(nb: NotebookNode, dest: Path) -> None:
    with open_atomic(dest, "w", encoding="utf-8") as handle:  # the usual mode, not 0600
        nbformat.write(nb, handle)


__all__ = ["Checked", "Observer", "Progress", "SubmissionStatus", "check_notebook", "grade_in_kernel",
           "job_folder", "shield"]
