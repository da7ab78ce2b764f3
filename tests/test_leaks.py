"""Nothing of a submission outlives it: no descriptor, no zombie (real kernels, month 2).

A batch worker grades hundreds of submissions in one process, and ``check --watch`` runs
check after check in one process: a descriptor or a zombie left per submission adds up to
"Too many open files" or a process table full of dead ``bwrap`` children.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import REPO, SOLUTIONS, assignment, default_signals

from mlgrade.errors import OutOfDescriptors
from mlgrade.kernel_launch import require_descriptors
from mlgrade.pipeline import check_notebook
from mlgrade.reaping import MIN_POLLS, reap_child, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")

LOW_NOFILE = 256
COPIES = 6


def zombie_children(pid: int) -> list[int]:
    """Children of ``pid`` that have exited and were never reaped (state Z in /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]  # the name may hold spaces and ')'
        if state == "Z" and int(ppid) == pid:
            found.append(int(entry))
    return found


# Run in a child whose RLIMIT_NOFILE is LOW_NOFILE: mlgrade's own batch path (discovery, a
# gradebook, plan_batch, grade_batch with one LocalPool worker, as `mlgrade grade --workers 1`),
# and, as each submission is recorded (the worker then idle), one JSON line: the worker's open
# descriptors and zombie children, and the submission's status and score.
BATCH = r"""
import json, multiprocessing, os, sys
from pathlib import Path
from mlgrade.assignments import default_assignments_dir, get_assignment
from mlgrade.batch.gradebook import Gradebook
from mlgrade.batch.runner import BatchObserver, grade_batch, plan_batch
from mlgrade.batch.submissions import discover
from mlgrade.batch.workers import LocalPool, hard_timeout
from mlgrade.config import resolve_settings
from tests.test_leaks import zombie_children

folder, db = Path(sys.argv[1]), Path(sys.argv[2])
a = get_assignment(default_assignments_dir(), "month2")
settings = resolve_settings({}, a.limits)

class Sample(BatchObserver):
    def recorded(self, item, tally):
        (worker,) = multiprocessing.active_children()
        print(json.dumps({"n": tally.done, "pid": worker.pid,
                          "fds": len(os.listdir(f"/proc/{worker.pid}/fd")),
                          "zombies": zombie_children(worker.pid), "status": item.status,
                          "score": item.score, "max": item.max_score}), flush=True)

with Gradebook(db) as book:
    plan = plan_batch(discover(folder, a.name), book, a, settings)
    grade_batch(plan, a, settings, LocalPool(1, hard_timeout(settings)), book, Sample())
"""


def _low_nofile() -> None:
    default_signals()
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_NOFILE, LOW_NOFILE))


@pytest.mark.kernel
@pytest.mark.slow
def test_one_batch_worker_grades_copies_under_a_low_descriptor_limit_without_leaking(
        tmp_path: Path) -> None:
    folder = tmp_path / "submissions"
    folder.mkdir()
    for i in range(COPIES):
        shutil.copyfile(SOLUTIONS / "month2.ipynb", folder / f"learner{i}.ipynb")
    done = subprocess.run([sys.executable, "-c", BATCH, str(folder), str(tmp_path / "gb.db")],
                          cwd=REPO, capture_output=True, text=True, timeout=900,
                          preexec_fn=_low_nofile, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(r["status"], r["score"]) for r in rows] == [("graded", r["max"]) for r in rows]
    assert len(rows) == COPIES and rows[0]["max"] > 0
    assert len({r["pid"] for r in rows}) == 1  # one worker did all of them
    # flat: the first submission's one-off imports aside, nothing grows per submission
    assert rows[-1]["fds"] - rows[1]["fds"] <= 2, [r["fds"] for r in rows]
    assert [r["zombies"] for r in rows] == [[]] * COPIES


# `mlgrade check` in a child process, its zombie children listed just before it exits
CHECK = r"""
import json, os, sys
from mlgrade.cli import main
from tests.test_leaks import zombie_children
sys.argv = ["mlgrade", "check", "month2", sys.argv[1]]
code = None
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "zombies": zombie_children(os.getpid())}))
"""


@pytest.mark.kernel
def test_mlgrade_check_leaves_no_zombie_child(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHECK, str(SOLUTIONS / "month2.ipynb")],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          preexec_fn=default_signals, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["zombies"] == [] and report["code"] in (0, None), report


@pytest.mark.kernel
def test_checks_in_process_leave_no_zombie_and_no_descriptor() -> None:
    """What `check --watch` does: check after check in one process."""
    a = assignment("month2")
    from mlgrade.config import resolve_settings

    settings = resolve_settings({}, a.limits)
    before = set(zombie_children(os.getpid()))
    fds = []
    for _ in range(3):
        result = check_notebook(SOLUTIONS / "month2.ipynb", a, settings).result
        assert result.score == result.max_score > 0
        assert set(zombie_children(os.getpid())) - before == set()
        fds.append(len(os.listdir("/proc/self/fd")))
    assert fds[-1] - fds[0] <= 2, fds


def test_too_few_descriptors_is_one_line_naming_the_limit() -> None:
    """Checked before a kernel starts: ZMQ would abort the whole process instead."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 8, hard))
    try:
        with pytest.raises(OutOfDescriptors) as caught:
            require_descriptors()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    message = str(caught.value)
    assert f"the limit is {used + 8} open files" in message and "ulimit -n 4096" in message
    assert "\n" not in message and "ipykernel" not in message


# -- patience: a slow machine is not a quarantine ---------------------------------------------
def test_a_wait_that_sees_progress_goes_on_past_its_window() -> None:
    """Processes going one by one (a slow machine) restart the window each time: with no
    window at all the wait still lasts until the last is gone."""
    left = list(range(3 * MIN_POLLS))
    calls = []

    def find() -> list[int]:
        calls.append(len(left))
        if len(calls) % 2 == 0:
            left.pop()  # one goes every other look
        return list(left)

    assert wait_for(find, lambda pids: not pids, base_s=0.0) == []


def test_a_wait_without_progress_gives_up_after_its_minimum_looks() -> None:
    looks = []
    retried = []
    result = wait_for(lambda: looks.append(1) or [4242], lambda pids: not pids, base_s=0.0,
                      retry=retried.append, still_dying=lambda pids: False)
    assert result == [4242] and len(looks) == MIN_POLLS and len(retried) == MIN_POLLS - 1


def test_reap_child_leaves_no_zombie() -> None:
    child = subprocess.Popen(["sleep", "60"])
    assert reap_child(child) and child.returncode == -9
    assert child.pid not in zombie_children(os.getpid())
