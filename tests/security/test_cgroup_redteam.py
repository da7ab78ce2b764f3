# ruff: noqa: E501  (notebook sources, one statement per line)
"""Red-team cases for the cgroup layer: attacks that the per-process rlimits alone let through.

RLIMIT_AS bounds each process, not their sum: six forked children that each stay under it
together hold far more than ``memory_mb``. With the cgroup layer the group's OOM killer stops
them (or the kernel: then that cell is KernelDied and the kernel restarts); the grader
survives with full marks for the honest cells, and the kernel's cgroups are gone afterwards
(``assert_nothing_survived``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from tests.probes import CGROUPS, requires
from tests.security.redteam_support import ALL_TESTS, TIERS, assert_nothing_survived, grade_hostile
from tests.security.test_redteam import HONEST, IMPORTS

pytestmark = [pytest.mark.kernel, pytest.mark.slow, requires(CGROUPS)]

MEMORY_MB = 1024
# six children, each up to 300 MB touched (stopping quietly at RLIMIT_AS): 1.8 GB in total
SPREAD_BOMB = (
    "kids = []\nfor _ in range(6):\n    pid = os.fork()\n    if pid == 0:\n        hog = []\n"
    "        try:\n            for _ in range(6):\n                hog.append(b'x' * (50 * 2**20))\n"
    "        except MemoryError:\n            pass\n        time.sleep(3)\n        os._exit(0)\n"
    "    kids.append(pid)\nprint('statuses', [os.waitpid(k, 0)[1] for k in kids])"
)


@pytest.mark.parametrize("tier", TIERS)
def test_memory_spread_over_processes_is_capped_by_the_cgroup(tier: str, tmp_path: Path) -> None:
    nb = new_notebook(cells=[new_code_cell(c) for c in (IMPORTS, SPREAD_BOMB, *HONEST.values())])
    # the children hold their memory for 3 s: give the cell room beyond the red-team assignment's
    # 4 s cell limit, so a loaded machine shows the OOM killer's verdict, not a timeout
    graded = grade_hostile(nb, tier, tmp_path, memory_mb=MEMORY_MB, cell_timeout=30)
    assert graded.result.isolation == f"{tier}+cgroup"
    assert graded.result.status == "graded", graded.result.reason
    assert graded.passed == ALL_TESTS
    assert graded.sandbox.oom_kills >= 1  # the group's OOM killer, not an rlimit, stopped it
    errors = graded.result.execution.errors
    assert {e.ename for e in errors} <= {"KernelDied"} and all(e.cell == 2 for e in errors)
    assert_nothing_survived(graded, f"mlgrade-redteam-{uuid.uuid4().hex}", [])
