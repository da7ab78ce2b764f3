"""A batch worker's next kernel starts while the current submission grades
(:mod:`mlgrade.prestart`): it must be as fresh and as isolated as a kernel started on demand.

Real kernels in the best sandbox this machine has (as `mlgrade check` picks it), driven in the
order a worker uses (:func:`mlgrade.batch.workers.grade_task`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import nbformat
import pytest
from tests.conftest import assignment, notebook_from_cells

from mlgrade.config import resolve_settings
from mlgrade.pipeline import check_notebook
from mlgrade.prestart import PrestartedKernel, Standby
from mlgrade.sandbox import choose_sandbox

pytestmark = pytest.mark.kernel

LOOK = ("import json, os\n"
        "print('LOOK' + json.dumps({'files': sorted(os.listdir('.')), 'cwd': os.getcwd(), "
        "'leak': 'LEAK' in globals()}))")


def looked(executed: Path) -> dict[str, object]:
    """What the notebook's first cell (``LOOK``) saw, from the executed notebook."""
    nb = nbformat.read(executed, as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    (line,) = [x for x in text.splitlines() if x.startswith("LOOK")]
    seen: dict[str, object] = json.loads(line[4:])
    return seen


def cells_output(executed: Path, index: int) -> str:
    nb = nbformat.read(executed, as_version=4)
    return "".join(o.get("text", "") for o in nb.cells[index].outputs)


def processes_in(folder: Path) -> list[int]:
    """Live processes whose working folder is ``folder`` (a kernel runs in its job folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(folder):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_the_next_submission_runs_in_a_fresh_kernel_and_folder(tmp_path: Path) -> None:
    a = assignment("month1")  # it has a data folder, copied into every job folder
    settings = resolve_settings({}, a.limits)
    standby = Standby()
    first, second = tmp_path / "first.ipynb", tmp_path / "second.ipynb"
    try:
        with standby.take(a, settings) as kernel:  # the worker's first submission: on demand
            assert kernel is None
            standby.prepare(a, settings, choose_sandbox(settings))  # the next one boots now
            nxt = standby.kept
            assert nxt is not None
            target = nxt.job / "planted.txt"
            # the first submission leaves a file and a global, and tries to reach the next
            # submission's folder while that kernel is already running
            nbformat.write(notebook_from_cells(
                LOOK, "LEAK = 1\nopen('leak.txt', 'w').write('from the first submission')",
                f"try:\n    open({str(target)!r}, 'w').write('planted')\n    print('REACHED')\n"
                "except OSError as exc:\n    print('BLOCKED', type(exc).__name__)"), first)
            done = check_notebook(first, a, settings, sandbox=choose_sandbox(settings),
                                  save_executed=tmp_path / "first.out.ipynb")
        standby.ready()  # as the worker does once the outcome is sent
        nbformat.write(notebook_from_cells(LOOK), second)
        with standby.take(a, settings) as kernel:
            assert kernel is nxt
            job = kernel.job
            before = sorted(os.listdir(job))
            again = check_notebook(second, a, settings, prestarted=kernel,
                                   save_executed=tmp_path / "second.out.ipynb")
    finally:
        standby.close()
    seen_first, seen_second = looked(tmp_path / "first.out.ipynb"), looked(tmp_path / "second.out.ipynb")
    # the same start on both paths: only the assignment's data (and the sandbox's own
    # folders) before any learner code, in a folder of its own
    assert "data" in seen_first["files"]  # type: ignore[operator]
    assert seen_second["files"] == seen_first["files"]
    assert before == seen_first["files"]
    assert "leak.txt" not in before and seen_second["leak"] is False
    assert seen_second["cwd"] != seen_first["cwd"]
    assert again.result.isolation == done.result.isolation  # the same tier and layers
    if done.result.isolation.startswith("namespaced"):  # the folder is not even visible
        assert cells_output(tmp_path / "first.out.ipynb", 2).startswith("BLOCKED")
        assert not target.exists()
    assert not job.parent.exists()  # the pre-started kernel's folder went with its submission


def test_an_unused_prestarted_kernel_is_shut_down_and_removed(tmp_path: Path) -> None:
    a = assignment("month2")
    settings = resolve_settings({}, a.limits)
    standby = Standby()
    try:
        standby.prepare(a, settings, choose_sandbox(settings))
        standby.ready()
        kernel = standby.kept
        assert kernel is not None
        job = kernel.job
        assert processes_in(job)  # it is up, in its own folder
        other = dataclasses.replace(settings, seed=settings.seed + 1)
        with standby.take(a, other) as taken:  # a submission it does not fit
            assert taken is None
            assert processes_in(job) == []
            assert not job.parent.exists()
        assert standby.kept is None
    finally:
        standby.close()


def test_a_prestarted_kernel_is_never_handed_out_twice(tmp_path: Path) -> None:
    a = assignment("month2")
    settings = resolve_settings({}, a.limits)
    kernel = PrestartedKernel(a, settings, choose_sandbox(settings))
    try:
        kernel.spawn()
        nb = notebook_from_cells("x = 1")
        with kernel.folders(), kernel.session(nb) as session:
            assert session.alive
        with pytest.raises(RuntimeError, match="already used or closed"), kernel.session(nb):
            pass
    finally:
        kernel.close()
