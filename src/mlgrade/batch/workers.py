"""Grade stage for a batch: run each submission in a worker process, return plain data.

Two backends share one interface, ``run(tasks, deliver)``:

* :class:`LocalPool` (the default): N long-lived worker processes on this machine, one
  submission at a time each. The parent enforces a hard per-submission timeout; a worker that
  dies (out of memory, a crash) or overruns is replaced and its submission becomes an errored
  result with the reason. The batch always finishes.
* :class:`DaskBackend` (``--scheduler tcp://HOST:8786``): each Dask task grades one
  submission in a fresh child process and returns the result as a plain dict.

Workers never touch the gradebook: ``deliver`` runs in the parent, which alone writes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlgrade import __version__
from mlgrade.config import Settings
from mlgrade.errors import (
    EnvironmentProblem,
    MlgradeError,
    OutOfDescriptors,
    UsageError,
    out_of_descriptors,
)

if TYPE_CHECKING:
    from mlgrade.prestart import Standby

TERM_GRACE_S = 10.0  # a worker told to stop gets this long to shut its kernel down
SLOW_START_S = 120.0  # allowance for starting a worker process (imports) on a busy machine


@dataclass(frozen=True)
class GradeTask:
    """Everything a worker needs to grade one submission, picklable and self-contained:
    the notebook travels as bytes, so a remote Dask worker needs no shared file system."""

    index: int
    learner: str
    source: str
    content_hash: str
    notebook: bytes
    assignment: str
    assignments_root: str
    settings: Settings


# {"result": GradeResult.to_dict(), "problem": str | None}, or {"fatal": message} when the
# machine cannot grade at all (no kernel, no sandbox): the batch stops, nothing is recorded
Outcome = dict[str, Any]
Deliver = Callable[[GradeTask, Outcome], None]


class Backend(Protocol):
    """Grades tasks somewhere and hands each outcome to ``deliver`` in the calling thread."""

    description: str

    def run(self, tasks: Sequence[GradeTask], deliver: Deliver) -> None: ...


def hard_timeout(settings: Settings) -> float:
    """The parent's backstop for one submission: every inner limit together, plus slack."""
    return (settings.startup_timeout * 4 + settings.notebook_timeout + settings.grading_timeout
            + 60.0)


# -- one submission ---------------------------------------------------------------------------

def classify(result: dict[str, Any]) -> str | None:
    """What went wrong while the notebook ran, for the report's 'problems' list."""
    execution = result.get("execution") or {}
    names = {e.get("ename") for e in execution.get("errors", ())}
    if execution.get("timed_out") or names & {"Timeout", "NotebookTimeout"}:
        return "timeout"
    if "KernelDied" in names or execution.get("kernel_restarts"):
        return "kernel_died"
    if result.get("status") == "errored":
        return "errored"
    return None


def problem_detail(result: dict[str, Any], problem: str | None) -> str:
    """The cell error behind a timeout or a kernel death, as the learner's report shows it."""
    wanted = {"timeout": ("Timeout", "NotebookTimeout"), "kernel_died": ("KernelDied",)}
    for error in (result.get("execution") or {}).get("errors", ()):
        if error.get("ename") in wanted.get(problem or "", ()):
            return f"cell {error.get('cell')}: {error.get('ename')}: {error.get('evalue')}"
    return problem or ""


def errored_outcome(task: GradeTask, reason: str, problem: str, duration_s: float = 0.0,
                    isolation: str = "unknown") -> Outcome:
    """A result for a submission that could not be graded at all."""
    from mlgrade.results import Execution, GradeResult, SubmissionStatus

    title, grader_version = task.assignment, "unknown"
    with contextlib.suppress(MlgradeError, OSError):
        from mlgrade.assignments import get_assignment

        found = get_assignment(_assignments_root(task), task.assignment)
        title, grader_version = found.title, found.grader_version()
    result = GradeResult(
        assignment=task.assignment, title=title, notebook=task.source, seed=task.settings.seed,
        status=SubmissionStatus.ERRORED, tests=(), execution=Execution(0, 0),
        duration_s=round(duration_s, 3), isolation=isolation, mlgrade_version=__version__,
        grader_version=grader_version, reason=reason)
    return {"result": result.to_dict(), "problem": problem}


def _sandbox(settings: Settings, slot: int) -> Any:
    from mlgrade.sandbox import choose_sandbox

    try:
        return choose_sandbox(settings, purpose="grade", slot=slot)
    except TypeError:  # before per-slot sandboxes existed
        return choose_sandbox(settings, purpose="grade")


def _assignments_root(task: GradeTask) -> Path:
    """The lead's assignments folder, or, on a cluster machine that lacks that path, the
    assignments bundled with the mlgrade installed there (its grader version is recorded)."""
    from mlgrade.assignments import default_assignments_dir

    root = Path(task.assignments_root)
    return root if root.is_dir() else default_assignments_dir()


def grade_task(task: GradeTask, slot: int, standby: Standby | None = None,
               more: bool = False) -> Outcome:
    """Grade one submission from a private temporary folder holding a copy of it.

    With a ``standby``, the submission runs in the kernel it holds (when it fits) and, if
    ``more`` submissions follow, the next kernel starts before this one is graded.
    Problems with the submission or the machine become an errored result; only an interrupt
    (the parent stopping this worker) escapes.
    """
    from mlgrade.assignments import get_assignment
    from mlgrade.pipeline import check_notebook
    from mlgrade.prestart import Standby

    start = time.perf_counter()
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="mlgrade-submission-") as tmp:
        copy = Path(tmp) / (Path(task.source).name or "submission.ipynb")
        copy.write_bytes(task.notebook)
        os.chdir(tmp)  # anything resolved relative to the worker stays in this folder
        try:
            assignment = get_assignment(_assignments_root(task), task.assignment)
            if assignment.is_repository:  # the repository travels as .zip bytes; no standby
                from mlgrade.repo.check import check_repository

                packed = copy.rename(Path(tmp) / "repository.zip")
                checked = check_repository(packed, assignment, task.settings,
                                           sandbox=_sandbox(task.settings, slot))
                result = replace(checked.result, notebook=task.source).to_dict()
                return {"result": result, "problem": classify(result)}
            standby = standby or Standby()
            with standby.take(assignment, task.settings) as kernel:
                if more:
                    standby.prepare(assignment, task.settings, _sandbox(task.settings, slot))
                checked = check_notebook(copy, assignment, task.settings, prestarted=kernel,
                                         sandbox=None if kernel else _sandbox(task.settings, slot))
            result = replace(checked.result, notebook=task.source).to_dict()
            return {"result": result, "problem": classify(result)}
        except EnvironmentProblem as exc:  # the lead's machine, not the learner: stop the batch
            return {"fatal": str(exc)}
        except MlgradeError as exc:  # e.g. the file is not a readable notebook
            return errored_outcome(task, str(exc), "unreadable", time.perf_counter() - start)
        except Exception as exc:  # a bug must not lose the batch: record it, carry on
            if out_of_descriptors(exc):  # the machine's limit: every submission would fail
                return {"fatal": str(OutOfDescriptors(f"{type(exc).__name__}: {exc}"))}
            return errored_outcome(task, f"mlgrade failed internally ({type(exc).__name__}: "
                                   f"{exc}); please report it", "internal",
                                   time.perf_counter() - start)
        finally:
            os.chdir(previous)


def _stop_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the kernel's context manager: no orphan kernel


# -- local processes --------------------------------------------------------------------------

def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _serve(conn: Connection, slot: int, threads: int) -> None:
    """Worker process main loop: receive a task, send back its outcome, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _stop_on_term)
    # N kernels each running a BLAS thread per core would oversubscribe the cores; these
    # variables are on the kernel environment's allow-list. A lead's own setting wins.
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    import mlgrade.pipeline  # noqa: F401  (import once, before the first task)
    from mlgrade.prestart import Standby

    standby = Standby()  # the next submission's kernel, started while this one grades
    try:
        conn.send("ready")
        while (message := conn.recv()) is not None:
            task, more = message
            conn.send(grade_task(task, slot, standby, more))
            standby.ready()  # waits for the next kernel and checks it while the parent records
    except (EOFError, BrokenPipeError):  # the parent is gone (killed): nothing to report to
        return
    finally:
        standby.close()


@dataclass
class _Slot:
    index: int
    process: Any
    conn: Connection
    ready: bool = False
    task: GradeTask | None = None
    deadline: float = 0.0
    started: float = 0.0


def describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


class LocalPool:
    """``workers`` grading processes on this machine (spawned, never forked: the parent may
    run a progress thread, and a fork would copy its locks)."""

    def __init__(self, workers: int, timeout_s: float) -> None:
        if workers < 1:
            raise UsageError(f"--workers must be 1 or more, got {workers}.")
        self.workers = workers
        self.timeout_s = timeout_s
        self.description = f"{workers} local worker process(es)"
        self.threads = max(1, cpu_count() // workers)  # BLAS/OpenMP threads per kernel
        self._ctx = multiprocessing.get_context("spawn")

    def _spawn(self, index: int) -> _Slot:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_serve, args=(child, index, self.threads), daemon=True,
                                    name=f"mlgrade-worker-{index}")
        process.start()
        child.close()
        return _Slot(index, process, parent, started=time.monotonic())

    def _stop(self, slot: _Slot) -> None:
        process = slot.process
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker shuts its kernel down and exits
            process.join(TERM_GRACE_S)
        if process.is_alive():
            process.kill()
            process.join(5)
        slot.conn.close()

    def run(self, tasks: Sequence[GradeTask], deliver: Deliver) -> None:
        pending = list(reversed(tasks))
        slots = [self._spawn(i) for i in range(min(self.workers, len(tasks)))]
        try:
            while pending or any(s.task is not None for s in slots):
                for slot in slots:
                    if slot.ready and slot.task is None and pending:
                        slot.task = pending.pop()
                        slot.conn.send((slot.task, bool(pending)))  # more to come?
                        slot.deadline = time.monotonic() + self.timeout_s
                self._wait(slots, deliver)
        finally:
            for slot in slots:
                with contextlib.suppress(OSError, BrokenPipeError):
                    if slot.process.is_alive() and slot.task is None:
                        slot.conn.send(None)
            for slot in slots:
                slot.process.join(2 if slot.task is None else 0)
                self._stop(slot)

    def _wait(self, slots: list[_Slot], deliver: Deliver) -> None:
        now = time.monotonic()
        # a busy worker must finish by its deadline, a starting one must say ready in time;
        # an idle one has nothing to miss
        deadlines = [s.deadline if s.task is not None else
                     s.started + SLOW_START_S if not s.ready else math.inf for s in slots]
        timeout = max(0.0, min(deadlines, default=math.inf) - now)
        watch: list[Any] = [s.conn for s in slots] + [s.process.sentinel for s in slots]
        ready = set(wait(watch, timeout=min(timeout, 5.0)))
        for i, slot in enumerate(slots):
            if slot.conn in ready:
                try:
                    message = slot.conn.recv()
                except (EOFError, OSError):
                    message = None
                if message == "ready":
                    slot.ready = True
                    continue
                if message is not None and slot.task is not None:
                    task, slot.task = slot.task, None
                    deliver(task, message)
                    continue
            if slot.conn in ready or slot.process.sentinel in ready:
                slot.process.join(1)
                how = describe_exit(slot.process.exitcode)
                if not slot.ready:
                    self._stop(slot)
                    raise EnvironmentProblem(f"a grading worker could not start: it {how}. "
                                             "Run `mlgrade check` on one notebook to see why.")
                slots[i] = self._replace(slot, deliver, f"the grading process {how}", "worker_died")
            elif time.monotonic() > deadlines[i]:
                if slot.ready:
                    reason = (f"grading took longer than {self.timeout_s:g} s and was stopped "
                              "(the notebook or a grader hung)")
                    slots[i] = self._replace(slot, deliver, reason, "worker_timeout")
                else:
                    self._stop(slot)
                    raise EnvironmentProblem(
                        f"a grading worker did not start within {SLOW_START_S:g} s. The machine "
                        "may be overloaded: try fewer --workers.")

    def _replace(self, slot: _Slot, deliver: Deliver, reason: str, problem: str) -> _Slot:
        self._stop(slot)
        if slot.task is not None:
            elapsed = time.monotonic() - (slot.deadline - self.timeout_s)
            deliver(slot.task, errored_outcome(slot.task, reason, problem, elapsed))
        return self._spawn(slot.index)


# -- Dask -------------------------------------------------------------------------------------

_slot_lock = threading.Lock()
_slots: dict[int, int] = {}


def _thread_slot() -> int:
    """A small, stable number for the Dask worker thread running this task."""
    with _slot_lock:
        return _slots.setdefault(threading.get_ident(), len(_slots))


def grade_in_subprocess(task: GradeTask, timeout_s: float) -> Outcome:
    """Grade ``task`` in a fresh Python process (a Dask task's body): the pytest run and the
    kernel stay out of the Dask worker, and a crash there is an errored result here."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlgrade-task-") as tmp:
        out = Path(tmp) / "outcome.json"
        child = subprocess.Popen(
            [sys.executable, "-m", "mlgrade.batch.workers", str(out), str(_thread_slot())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            _, stderr = child.communicate(pickle.dumps(task), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.communicate(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
            return errored_outcome(task, f"grading took longer than {timeout_s:g} s and was "
                                   "stopped (the notebook or a grader hung)", "worker_timeout",
                                   time.monotonic() - start)
        if child.returncode == 0 and out.exists():
            outcome: Outcome = json.loads(out.read_text(encoding="utf-8"))
            return outcome
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if stderr else []
        return errored_outcome(task, f"the grading process {describe_exit(child.returncode)}"
                               + (f": {tail[0][:300]}" if tail else ""), "worker_died",
                               time.monotonic() - start)


class DaskBackend:
    """Grade on a Dask distributed cluster; the gradebook stays with the caller."""

    def __init__(self, scheduler: str, timeout_s: float) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise EnvironmentProblem("--scheduler needs the optional Dask support: "
                                     "pip install 'mlgrade[cluster]'.") from None
        self.scheduler = scheduler
        self.timeout_s = timeout_s
        self.description = f"Dask scheduler {scheduler}"

    def run(self, tasks: Sequence[GradeTask], deliver: Deliver) -> None:
        from distributed import Client, as_completed

        try:
            client = Client(self.scheduler, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise EnvironmentProblem(
                f"cannot reach the Dask scheduler at {self.scheduler} ({exc}). Check the "
                "address and that the scheduler is running.") from None
        try:
            run_id = f"{os.getpid()}-{time.time_ns()}"
            futures = {client.submit(grade_in_subprocess, task, self.timeout_s, pure=False,
                                     key=f"mlgrade-{run_id}-{task.index}"): task
                       for task in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # KilledWorker, lost connection: data, not a crash
                    outcome = errored_outcome(task, f"the Dask task failed ({type(exc).__name__}: "
                                              f"{exc})", "worker_died")
                deliver(task, outcome)
        finally:
            client.close()


def _child_main(argv: list[str]) -> int:
    """``python -m mlgrade.batch.workers OUT SLOT``: grade the pickled task on stdin."""
    signal.signal(signal.SIGTERM, _stop_on_term)
    task = pickle.loads(sys.stdin.buffer.read())
    outcome = grade_task(task, int(argv[1]))
    Path(argv[0]).write_text(json.dumps(outcome, allow_nan=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
