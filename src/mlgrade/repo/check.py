"""Check stage of a repository assignment: the counterpart of
:func:`mlgrade.pipeline.check_notebook` for ``kind = "repository"``.

The repository is copied into ``<job>/repo`` (:mod:`mlgrade.repo.intake`), the same sandboxed
kernel a notebook gets is started there with an empty notebook (no learner code runs in it),
and the assignment's hidden graders take over: they start the learner's processes as children
of that kernel (inside the sandbox) and judge what comes back on the grader's side. The result
is an ordinary :class:`~mlgrade.results.GradeResult`, so every renderer, ``grade`` and the
gradebook take it as they take a notebook's.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import nbformat

from mlgrade import __version__
from mlgrade.assignments import Assignment, require_packages
from mlgrade.config import Settings
from mlgrade.errors import NotebookInputError
from mlgrade.jobfolder import shield
from mlgrade.pipeline import Checked, Observer, Progress, _noop, grade_in_kernel
from mlgrade.repo import REPO_DIR
from mlgrade.repo.intake import Intake, copy_repository
from mlgrade.sandbox import UNISOLATED_NOTICE, Sandbox, choose_sandbox
from mlgrade.sandbox.gpu import describe_kernel
from mlgrade.score import score

NOT_BUILT = ("The Dockerfile and the CI workflow were parsed and checked, not run: no image was "
             "built and no workflow was executed.")


def check_repository(path: Path, assignment: Assignment, settings: Settings, *,
                     observer: Observer = _noop, sandbox: Sandbox | None = None,
                     questions: tuple[str, ...] | None = None) -> Checked:
    """Grade the repository at ``path`` (a folder, a git checkout or a ``.zip``); ``path`` is
    only ever read."""
    start = time.perf_counter()
    if not assignment.is_repository:
        raise NotebookInputError(f"{assignment.name} grades notebooks, not repositories.")
    observer(Progress("read"))
    if not path.exists():
        raise NotebookInputError(f"{path} does not exist: pass the repository's folder, a git "
                                 f"checkout or a .zip of it (`mlgrade start {assignment.name} "
                                 "DIR` writes the starter repository).")
    require_packages(assignment)
    sandbox = sandbox or choose_sandbox(settings)
    shield(sandbox, assignment)
    copied: list[Intake] = []

    def prepare(job: Path) -> None:
        copied.append(copy_repository(path, job / REPO_DIR))

    # one comment cell: nothing of the learner's runs in the kernel itself
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"# {assignment.name}: the repository is in ./{REPO_DIR}; the graders start its processes")])
    execution, graders = grade_in_kernel(empty, assignment, settings, sandbox, observer, questions,
                                         prepare=prepare)
    observer(Progress("score"))
    result = score(
        assignment=assignment, notebook=str(path), settings=settings, execution=execution,
        graders=graders, duration_s=time.perf_counter() - start,
        isolation=getattr(sandbox, "isolation", sandbox.tier), mlgrade_version=__version__,
    )
    notices = [*(copied[0].notices if copied else ()), NOT_BUILT]
    if sandbox.tier == "none":
        notices.insert(0, UNISOLATED_NOTICE)
    device, notes = describe_kernel(sandbox, settings)
    result = dataclasses.replace(result, device=device,
                                 notices=(*notices, *result.notices, *notes))
    return Checked(result, graders.grader_errors)


__all__ = ["NOT_BUILT", "check_repository"]
