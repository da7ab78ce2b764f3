"""Helpers for the red-team suite: grade a hostile notebook in a chosen tier and check that
nothing of it outlived the grading.

Every case runs against ``assignments/redteam`` (four one-point tests) through the real
pipeline, with a sandbox that records where it put the job and which uid it used.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat import NotebookNode
from tests.kernel_support import memory_peak
from tests.probes import BUBBLEWRAP, requires
from tests.timing import scaled

from mlgrade.assignments import Assignment, load_assignment
from mlgrade.config import Settings, resolve_settings
from mlgrade.pipeline import check_notebook
from mlgrade.results import GradeResult
from mlgrade.sandbox import KernelLaunch, NamespacedSandbox, ProcessSandbox
from mlgrade.sandbox.slots import pids_of_uid, pids_with_token

HERE = Path(__file__).parent
ASSIGNMENTS = HERE / "assignments"
ALL_TESTS = frozenset({"test_answer", "test_double", "test_saved", "test_predict"})
MAX_SECONDS = 75.0  # one hostile submission, everything included
# how far one grading grows the grading process itself at its peak (VmHWM over the run, not the
# pytest process's lifetime peak), whatever the kernel did
MAX_GRADER_GROWTH_MB = 600


def redteam() -> Assignment:
    return load_assignment(ASSIGNMENTS / "redteam")


class _Recording:
    """Mixin: remember the job folder and the launch token of the last kernel."""

    last_base: Path | None = None

    def launch(self, job_dir: Path, run_dir: Path, settings: Settings) -> KernelLaunch:
        self.last_base = job_dir.parent
        return super().launch(job_dir, run_dir, settings)  # type: ignore[misc,no-any-return]


class RecordingProcess(_Recording, ProcessSandbox):
    pass


class RecordingNamespaced(_Recording, NamespacedSandbox):
    pass


def red_team_slot() -> int:
    """Slot 7, one further per pytest-xdist worker: the uids of one worker's slot are never
    another's, so a uid another worker leases right after this grading released it cannot
    look like a survivor of this one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 7 + int(worker.removeprefix("gw") or 0)


def make_sandbox(tier: str) -> RecordingProcess | RecordingNamespaced:
    if tier == "namespaced":
        return RecordingNamespaced(slot=red_team_slot(), file_size_mb=64, processes=256)
    return RecordingProcess(slot=red_team_slot(), file_size_mb=64, processes=256)


def process_tier_confines() -> bool:
    """Whether the process tier here runs kernels as a separate uid (root + reachable python)."""
    return make_sandbox("process")._lease is not None


TIERS = [
    pytest.param("process", id="process"),
    # decided by the independent probe: a bug in mlgrade's detection fails these, never skips
    pytest.param("namespaced", id="namespaced", marks=requires(BUBBLEWRAP)),
]


@dataclass
class Graded:
    result: GradeResult
    sandbox: Any
    seconds: float
    grown_mb: float  # the grading process's peak over the run, above its size at the start

    @property
    def passed(self) -> set[str]:
        return {t.id for t in self.result.tests if t.status == "passed"}

    def feedback(self, test_id: str) -> str:
        return next(t.feedback for t in self.result.tests if t.id == test_id)


def grade_hostile(nb: NotebookNode, tier: str, folder: Path, **overrides: Any) -> Graded:
    a = redteam()
    path = folder / f"submission-{len(list(folder.iterdir()))}.ipynb"
    nbformat.write(nb, path)
    settings = resolve_settings({"memory_mb": 2048, **overrides}, a.limits, environ={})
    return run_graded(path, a, settings, tier)


def run_graded(path: Path, a: Assignment, settings: Settings, tier: str) -> Graded:
    """Grade ``path`` in a recording sandbox of ``tier``: the result, the sandbox, the time and
    the grading process's peak growth."""
    sandbox = make_sandbox(tier)
    start = time.monotonic()
    with memory_peak() as peak:
        result = check_notebook(path, a, settings, sandbox=sandbox).result
    return Graded(result, sandbox, time.monotonic() - start, peak.grown_mb)


def processes_with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmd = handle.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            found.append(int(entry))
    return found


def assert_nothing_survived(graded: Graded, marker: str, sentinels: list[Path]) -> None:
    """The grader is fine, and no process, folder or sentinel file of the submission is left."""
    sandbox = graded.sandbox
    assert graded.seconds < scaled(MAX_SECONDS), f"grading took {graded.seconds:.0f} s"
    print(f"\n[grown] {graded.result.assignment} {graded.sandbox.tier}: {graded.grown_mb:.0f} MB")
    assert graded.grown_mb < MAX_GRADER_GROWTH_MB, f"the grading process grew by {graded.grown_mb:.0f} MB"
    assert sandbox.last_base is not None and not os.path.lexists(sandbox.last_base)
    if sandbox._lease is not None:
        assert pids_of_uid(sandbox._lease.uid) == []
    assert pids_with_token(sandbox._token) == []
    if sandbox.cgroup is not None:  # the kernel's cgroups were emptied and removed
        assert sandbox._cgroup_job is None
        assert not [h.own for h in sandbox.cgroup.hierarchies()
                    if any(p.name.startswith(f"mlgrade-{os.getpid()}-") for p in h.own.iterdir())]
    assert processes_with_marker(marker) == []
    for sentinel in sentinels:
        assert not sentinel.exists(), f"{sentinel} was written from inside the sandbox"
