"""The job folder stage: where one submission's kernel works, and nothing survives it.

Its own module (not :mod:`mlgrade.pipeline`) so that the self-check's grader process gets it
without importing the CLI's kernel machinery (nbclient, jupyter_client).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlgrade.assignments import Assignment
from mlgrade.errors import SandboxUnavailableError
from mlgrade.sandbox.tree import remove_tree


@contextlib.contextmanager
def job_folder(assignment: Assignment) -> Iterator[tuple[Path, Path]]:
    """A private temporary folder: ``job/`` is the kernel's working dir (with a copy of the
    assignment's data files), ``run/`` holds connection files and kernel logs."""
    base = Path(tempfile.mkdtemp(prefix="mlgrade-"))
    job, run = base / "job", base / "run"
    try:
        job.mkdir()
        run.mkdir(mode=0o700)
        for data in assignment.data_dirs:
            shutil.copytree(data, job / data.name)
        yield job, run
    finally:
        # iterative, never follows links: the learner may leave a 1,500-level tree or links
        with contextlib.suppress(OSError):
            remove_tree(base)
        if os.path.lexists(base):  # fail closed: nothing of a submission may survive it
            raise SandboxUnavailableError(
                f"the job folder {base} could not be deleted; grading stopped. Remove it and "
                "check what holds it (`lsof +D`), then run mlgrade again."
            )


def shield(sandbox: object, assignment: Assignment) -> None:
    """Hide the assignment's graders from the kernel ``sandbox`` will start."""
    protect = getattr(sandbox, "protect", None)
    if protect is not None:
        protect(assignment.folder, assignment.graders)


__all__ = ["job_folder", "shield"]
