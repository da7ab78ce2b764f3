"""The grader's own work on a learner's specs, files and values has a budget (issue 21).

Each case (tests/security/budget_attacks.py) is a reference solution with cells appended that
once made mlgrade itself decode a 64-megapixel PNG (5 GB), refit a (5000, 5000) network or a
nested bagging (minutes, gigabytes), search a grid of a million candidates (past 900 s), print
libsvm's progress into the JSON report, or raise on ``10**400`` and a model without
``predict_proba`` (an ``errored`` result). Each runs as ``mlgrade check MONTH NOTEBOOK --format
json`` in a child process and must give: stdout that is exactly one JSON document, status
``graded``, the attacked tests failed with a reason naming the limit or the problem, no test
in error, and a grading process whose own peak RSS (VmHWM) stays under 400 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from tests.conftest import REPO, default_signals
from tests.security.budget_attacks import ATTACKS, Attack, attack_notebook
from tests.security.test_grader_survives import MAX_GRADER_RSS_MB, RSS_WRAPPER

pytestmark = [pytest.mark.kernel, pytest.mark.slow]



def check_json(month: str, notebook: Path, tmp: Path) -> tuple[str, str, float]:
    """``mlgrade check MONTH NOTEBOOK --format json`` in a clean child: (stdout, stderr, the
    child's own peak RSS in MB)."""
    rss_file = tmp / f"rss-{time.monotonic_ns()}"
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "LOGNAME")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("OPENBLAS_")}
    env.update({"MLGRADE_ASSIGNMENTS": str(REPO / "assignments"), "TMPDIR": str(tmp),
                "SURVIVE_RSS_FILE": str(rss_file)})
    done = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, "check", month, str(notebook), "--format", "json",
         "--isolation", "process", "--memory-mb", "2048"],
        capture_output=True, text=True, env=env, timeout=480, check=False, cwd=tmp.parent,
        start_new_session=True, preexec_fn=default_signals)
    rss_mb = int(rss_file.read_text()) / 1024 if rss_file.exists() else float("nan")
    rss_file.unlink(missing_ok=True)
    return done.stdout, done.stderr, rss_mb


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_grader_work_stays_within_its_budget(attack: Attack, tmp_path: Path,
                                             private_tmp: Path) -> None:
    notebook = tmp_path / f"{attack.name}.ipynb"
    nbformat.write(attack_notebook(attack), notebook)
    stdout, stderr, rss_mb = check_json(attack.month, notebook, private_tmp)
    print(f"\n[budget] {attack.name}: grader peak {rss_mb:.0f} MB")

    document = json.loads(stdout)  # exactly one JSON document (trailing data would raise)
    assert document["status"] == "graded", (document.get("reason"), stderr[-2000:])
    tests = {t["id"]: t for t in document["tests"]}
    assert [t for t in tests.values() if t["status"] == "error"] == []
    for test_id, words in attack.fails.items():
        assert tests[test_id]["status"] == "failed", tests[test_id]
        assert all(w in tests[test_id]["feedback"] for w in words), tests[test_id]["feedback"]
    assert rss_mb < MAX_GRADER_RSS_MB, f"the grader grew to {rss_mb:.0f} MB"
    assert os.listdir(private_tmp) == []
