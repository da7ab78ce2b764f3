"""A kernel started before its notebook is known, so that a batch worker's next kernel boots
while the current submission runs and grades.

It is exactly what a start on demand (:func:`mlgrade.pipeline.grade_in_kernel`) gives:

- a fresh job folder of its own (:func:`mlgrade.jobfolder.job_folder`: the assignment's data
  copied in, nothing else), never one a submission has used;
- a sandbox of its own, of the tier and limits the submission's would have, with the
  assignment's graders hidden (:func:`mlgrade.jobfolder.shield`); as root it leases its own
  uid (:class:`mlgrade.sandbox.slots.SlotLease` skips a uid that is held), so the submission
  running meanwhile can neither reach it nor be reaped with it;
- its canary, run before any learner code.

A kernel that is not used (the next submission is another assignment or has other settings,
the batch ends, grading stops) is shut down, its sandbox reaped and released, its folder
removed. The process starts at once (:func:`mlgrade.kernel_launch.spawn_kernel`); waiting for
it and the canary come later (:meth:`PrestartedKernel.ready`), so nothing here needs a thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from mlgrade.assignments import Assignment
from mlgrade.config import Settings
from mlgrade.errors import EnvironmentProblem, MlgradeError
from mlgrade.kernel import KernelSession
from mlgrade.kernel_launch import LaunchedKernel, connect_kernel, discard, spawn_kernel
from mlgrade.sandbox import Sandbox


def _placeholder() -> NotebookNode:
    # nbclient stores a hidden cell's outputs (the canary's) over the notebook's last cell, and
    # the session puts that cell back: the notebook to come is attached later
    return new_notebook(cells=[new_code_cell("")])


class PrestartedKernel:
    """One kernel for the next submission of ``assignment`` graded with ``settings``."""

    def __init__(self, assignment: Assignment, settings: Settings, sandbox: Sandbox) -> None:
        self.assignment, self.settings, self.sandbox = assignment, settings, sandbox
        self._folder = contextlib.ExitStack()
        self._session: KernelSession | None = None
        self._spawned: LaunchedKernel | None = None

    def spawn(self) -> None:
        """Make the job folder and start the kernel's process (it boots on its own)."""
        from mlgrade.jobfolder import job_folder, shield

        job, run = self._folder.enter_context(job_folder(self.assignment))
        nb = _placeholder()
        self._session = KernelSession(nb, job, run, self.settings, self.sandbox)
        shield(self.sandbox, self.assignment)
        self._spawned = spawn_kernel(nb, job, run, self.settings, self.sandbox, 0)

    @property
    def job(self) -> Path:
        """The kernel's working folder."""
        if self._session is None:
            raise RuntimeError("the pre-started kernel has no job folder (not started, or "
                               "already used or closed)")
        return self._session.job_dir

    def fits(self, assignment: Assignment, settings: Settings) -> bool:
        """Whether this kernel is the one a start on demand would give that submission."""
        return (self._session is not None and assignment == self.assignment
                and settings == self.settings)

    def ready(self) -> None:
        """Wait until the kernel answers, then run its canary (before any learner code).
        Raises as a start on demand would: :class:`KernelStartError`, :class:`CanaryFailed`."""
        if self._session is not None:
            self._take_over(self._session)

    def _take_over(self, session: KernelSession) -> None:
        """``session`` takes the spawned kernel, once it answers and passes its canary."""
        spawned, self._spawned = self._spawned, None
        if spawned is not None:
            session.start(connect_kernel(spawned))

    @contextlib.contextmanager
    def folders(self) -> Iterator[tuple[Path, Path]]:
        """The job and run folders, removed when the block ends (as with ``job_folder``)."""
        session = self._session
        with self._folder:
            if session is None:
                raise RuntimeError("the pre-started kernel was already used or closed")
            yield session.job_dir, session.run_dir

    @contextlib.contextmanager
    def session(self, nb: NotebookNode) -> Iterator[KernelSession]:
        """The kernel's session, running ``nb``; shut down when the block ends (as a
        :class:`KernelSession` used in a ``with`` block)."""
        session, self._session = self._session, None
        if session is None:
            raise RuntimeError("the pre-started kernel was already used or closed")
        with contextlib.ExitStack() as stack:
            stack.push(session)  # its __exit__: shutdown, reap, release the sandbox
            self._take_over(session)  # a failed start is still exited
            session.attach(nb)
            yield session

    def close(self) -> None:
        """Shut an unused kernel down: its processes, its sandbox's lease, its folder. Safe to
        call again, and after :meth:`session` and :meth:`folders` have ended."""
        spawned, self._spawned = self._spawned, None
        session, self._session = self._session, None
        try:
            if spawned is not None:
                discard(spawned)
            if session is not None:
                session.__exit__(None, None, None)
        finally:
            self._folder.close()


@contextlib.contextmanager
def started_early(assignment: Assignment, settings: Settings,
                  sandbox: Callable[[], Sandbox]) -> Iterator[PrestartedKernel | None]:
    """A kernel for the one submission a ``check`` is about to read: the one :func:`guess`
    started for exactly this assignment and these settings, or one whose process starts now
    (in ``sandbox()``) and boots while mlgrade reads the notebook and loads the rest of itself
    (None: it could not start early, and the check starts one on demand, which reports the
    problem). What the block leaves of it is shut down."""
    global _guessed
    standby, _guessed = _guessed, Standby()
    kept = standby.kept
    if kept is None or not kept.fits(assignment, settings):
        standby.prepare(assignment, settings, sandbox())  # a wrong guess is shut down first
    try:
        with standby.take(assignment, settings) as kernel:
            yield kernel
    finally:
        standby.close()


class Standby:
    """A batch worker's one pre-started kernel, for its next submission."""

    def __init__(self) -> None:
        self._kernel: PrestartedKernel | None = None
        self._problem: EnvironmentProblem | None = None

    @property
    def kept(self) -> PrestartedKernel | None:
        """The kernel waiting for the next submission, if any."""
        return self._kernel

    @contextlib.contextmanager
    def take(self, assignment: Assignment, settings: Settings) -> Iterator[PrestartedKernel | None]:
        """The kernel started for this submission (None: it starts its own on demand); what
        the block leaves of it is shut down. A pre-started kernel that could not be cleaned
        up (a process that survived SIGKILL, a folder that would not go) is raised here, for
        this submission to report: it stops a batch, as it would have on demand."""
        problem, self._problem = self._problem, None
        if problem is not None:
            raise problem
        kernel, self._kernel = self._kernel, None
        if kernel is not None and not kernel.fits(assignment, settings):
            kernel.close()
            kernel = None
        try:
            yield kernel
        finally:
            if kernel is not None:
                kernel.close()

    def prepare(self, assignment: Assignment, settings: Settings, sandbox: Sandbox) -> None:
        """Start the next submission's kernel now: it boots while this one is graded."""
        self.close()
        self._kernel = PrestartedKernel(assignment, settings, sandbox)
        self._attempt(self._kernel.spawn)

    def ready(self) -> None:
        """Wait for the next kernel and run its canary, so it is checked before it is needed."""
        if self._kernel is not None:
            self._attempt(self._kernel.ready)

    def _attempt(self, step: Callable[[], None]) -> None:
        try:
            step()
        except (MlgradeError, OSError):
            # not kept: the next submission starts its own kernel and meets (and reports) the
            # problem there, as without a standby
            self.close()

    def close(self) -> None:
        """Shut the kept kernel down, if any."""
        kernel, self._kernel = self._kernel, None
        if kernel is not None:
            try:
                kernel.close()
            except EnvironmentProblem as exc:
                self._problem = exc


# the kernel `mlgrade check` started before its command line was fully parsed (see guess)
_guessed = Standby()


def guess(assignment: Assignment, settings: Settings, sandbox: Sandbox) -> None:
    """Start the kernel a ``check`` of ``assignment`` with ``settings`` will want, before the
    command is parsed and the rest of mlgrade loads (``mlgrade.commands.early``). The check
    takes it through :func:`started_early` only if its own assignment and settings are these;
    :func:`forget_guess` shuts down one nothing took."""
    _guessed.prepare(assignment, settings, sandbox)


def forget_guess() -> None:
    """Shut down the guessed kernel if no check took it (a usage error, another command)."""
    _guessed.close()


__all__ = ["PrestartedKernel", "Standby", "forget_guess", "guess", "started_early"]
