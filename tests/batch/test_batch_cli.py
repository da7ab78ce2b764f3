"""`mlgrade grade/report/export/feedback` end to end: real submissions, real kernels, real SQLite.

Tests run the grader with ``--isolation none`` (the explicit opt-out): the namespaced sandbox
is not available on every CI runner, and these tests are about batching, not containment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from tests.batch.helpers import (
    EXPECTED,
    SKIPPED,
    STARTER,
    cell_timeout,
    expected_scores,
    make_submissions,
    scores,
    write,
)
from tests.conftest import REPO, notebook_from_cells, solution
from tests.probes import BUBBLEWRAP, requires
from tests.timing import scaled
from typer.testing import CliRunner

from mlgrade.batch.feedback import redact_seed, result_from_dict
from mlgrade.cli import app
from mlgrade.render import markdown

runner = CliRunner()
ISO = ["--isolation", "none"]
ENV = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}


def rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def copies(folder: Path, n: int) -> Path:
    ref = solution("month2")
    for i in range(n):
        write(ref, folder / f"s{i}.ipynb")
    return folder


@pytest.mark.kernel
@pytest.mark.slow
def test_grade_a_class_then_report_export_and_feedback(tmp_path: Path) -> None:
    folder = make_submissions(tmp_path / "submissions")
    db = tmp_path / "group.db"
    limit = cell_timeout()
    args = ["grade", "month2", str(folder), "--gradebook", str(db), "--workers", "2",
            "--cell-timeout", limit, *ISO]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert scores(db) == expected_scores()
    for skipped in SKIPPED:
        assert f"skipped {skipped}: " in first.stderr
    assert "two submissions for learner 'grace'" in first.stderr
    assert "6 to grade, 0 unchanged, 3 skipped" in first.stderr
    assert "graded 6 submission(s)" in first.stderr and "1 full marks, 0 errored" in first.stderr
    assert dict(rows(db, "SELECT l.name, s.problem FROM submissions s JOIN learners l "
                         "ON l.id = s.learner_id")) == {
        "alice": None, "bob": None, "carol": None, "dave": None, "erin": "timeout",
        "frank": "kernel_died"}
    # a secret seed, drawn once for this gradebook and assignment, graded everyone
    ((seed,),) = rows(db, "SELECT seed FROM assignment_seeds WHERE assignment = 'month2'")
    assert rows(db, "SELECT DISTINCT seed FROM submissions") == [(seed,)] and seed != 20260101
    assert "seed: secret, kept in the gradebook" in first.stderr
    assert rows(db, "SELECT source FROM submissions ORDER BY source")[2] == ("carol/month2.ipynb",)

    # incremental: nothing changed, nothing graded; one learner resubmits, only they are graded
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "0 to grade, 6 unchanged" in again.stderr
    write(solution("month2"), folder / "bob.ipynb")
    third = runner.invoke(app, args)
    assert "1 to grade, 5 unchanged" in third.stderr
    assert scores(db)["bob"] == (15.0, "graded")

    csv = runner.invoke(app, ["export", "--gradebook", str(db), "--detail"])
    header, *lines = csv.stdout.splitlines()
    assert header.split(",")[:9] == [
        "learner", "month2", "month2:max", "month2:percent", "month2:status", "month2:late",
        "month2:original", "month2:adjusted", "month2:test_prediction"]
    ((n_tests,),) = rows(db, "SELECT COUNT(DISTINCT test_id) FROM test_results")
    assert len(header.split(",")) == 8 + n_tests
    assert [line.split(",")[:9] for line in lines] == [
        ["alice", "15", "15", "100", "graded", "", "15", "", "1"],
        ["bob", "15", "15", "100", "graded", "", "15", "", "1"],
        ["carol", "0", "15", "0", "graded", "", "0", "", "0"],
        ["dave", "14", "15", "93.3", "graded", "", "14", "", "0"],
        ["erin", "13", "15", "86.7", "timeout", "", "13", "", "1"],
        ["frank", "13", "15", "86.7", "kernel_died", "", "13", "", "1"]]
    plain = runner.invoke(app, ["export", "--gradebook", str(db), "--format", "json"])
    assert json.loads(plain.stdout)[3] == {
        "learner": "dave", "month2": 14.0, "month2:max": 15.0, "month2:percent": 93.3,
        "month2:status": "graded", "month2:late": "", "month2:original": 14.0,
        "month2:adjusted": None}

    rep = runner.invoke(app, ["report", "month2", "--gradebook", str(db), "-f", "json",
                              "--plot", str(tmp_path / "plot.png")])
    assert rep.exit_code == 0, rep.stderr
    (data,) = json.loads(rep.stdout)
    summary = (data["submissions"], data["full_marks"], data["lowest"], data["highest"])
    assert summary == (6, 2, 0, 15)
    assert data["tests"][0]["test_id"] in ("test_sigmoid_stable", "test_softmax_stable",
                                           "test_prediction")
    assert data["tests"][0]["pass_rate"] == pytest.approx(4 / 6, abs=1e-4)
    assert [p["learner"] for p in data["problems"]] == ["erin", "frank"]
    assert data["problems"][0]["reason"].startswith(f"cell 9: Timeout: cell ran longer than {limit} s")
    assert data["problems"][1]["reason"].startswith("cell 8: KernelDied: the kernel died")
    secs = [s["duration_s"] for s in data["slowest"]]
    assert len(secs) == 5 and secs == sorted(secs, reverse=True)  # slowest first (load decides who)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {tmp_path / 'plot.png'}" in rep.stderr
    text = runner.invoke(app, ["report", "--gradebook", str(db)], env={"COLUMNS": "200"})
    assert "pass rate per test, hardest first" in text.stdout and "erin" in text.stdout

    out = tmp_path / "feedback"
    fb = runner.invoke(app, ["feedback", "month2", "--out", str(out), "--gradebook", str(db)])
    assert fb.exit_code == 0 and "wrote feedback for 6 learner(s)" in fb.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{who}.{ext}" for who in EXPECTED for ext in ("md", "html"))
    # the same report the learner gets from `mlgrade check` (all but the run-details line)
    own = runner.invoke(app, ["check", "month2", str(folder / EXPECTED["dave"][0]), "-f",
                              "markdown", *ISO])
    assert own.exit_code == 1
    assert (out / "dave.md").read_text().splitlines()[:-1] == own.stdout.splitlines()[:-1]
    (stored,) = rows(db, "SELECT result_json FROM submissions WHERE source LIKE '%dave%'")
    own_report = markdown.render(result_from_dict(json.loads(stored[0])))
    assert f"seed {seed}" in own_report and str(seed) not in (out / "dave.md").read_text()
    assert (out / "dave.md").read_text() == redact_seed(own_report, seed)  # the secret stays secret
    page = (out / "dave.html").read_text()
    assert "Score: 14 / 15" in page and "SyntaxError" in page
    assert f"Timeout: cell ran longer than {limit} s" in (out / "erin.html").read_text()


@pytest.mark.kernel
@pytest.mark.slow
def test_sigkill_mid_batch_then_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    folder = copies(tmp_path / "in", 6)
    db = tmp_path / "g.db"
    cmd = [sys.executable, "-m", "mlgrade", "grade", "month2", str(folder), "--gradebook", str(db),
           "--workers", "1", *ISO]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    committed: list[tuple[object, ...]] = []
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            committed = rows(db, "SELECT l.name, s.id FROM submissions s "
                                 "JOIN learners l ON l.id = s.learner_id")
        except sqlite3.DatabaseError:  # not created yet, or being created
            committed = []
        if len(committed) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    _, killed_stderr = proc.communicate()
    assert 2 <= len(committed) < 6, f"not killed mid-way: {committed} {killed_stderr[-3000:]!r}"
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    before = dict(rows(db, "SELECT l.name, s.id FROM submissions s "
                           "JOIN learners l ON l.id = s.learner_id"))

    rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{6 - len(before)} to grade, {len(before)} unchanged" in rerun.stderr
    after = dict(rows(db, "SELECT l.name, s.id FROM submissions s "
                          "JOIN learners l ON l.id = s.learner_id"))
    assert sorted(after) == [f"s{i}" for i in range(6)]
    assert {k: after[k] for k in before} == before  # committed rows were kept, not regraded
    assert rows(db, "SELECT COUNT(*), SUM(score) FROM submissions") == [(6, 90.0)]
    assert rows(db, "SELECT COUNT(*) FROM test_results") == rows(
        db, "SELECT 6 * COUNT(DISTINCT test_id) FROM test_results")  # every test, once each
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.kernel
@pytest.mark.slow
def test_two_concurrent_runs_on_one_gradebook(tmp_path: Path) -> None:
    folder = copies(tmp_path / "in", 3)
    db = tmp_path / "g.db"
    cmd = [sys.executable, "-m", "mlgrade", "grade", "month2", str(folder), "--gradebook", str(db),
           "--workers", "1", *ISO]
    procs = [subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    assert rows(db, "SELECT COUNT(*), SUM(score) FROM submissions") == [(3, 45.0)]
    assert rows(db, "SELECT COUNT(*) FROM learners") == [(3,)]
    assert rows(db, "SELECT COUNT(*) FROM test_results") == rows(
        db, "SELECT 3 * COUNT(DISTINCT test_id) FROM test_results")
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.kernel
@pytest.mark.slow
def test_zip_input_and_regrade(tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("export/alice/month2.ipynb", nbformat.writes(solution("month2")))
        z.write(STARTER, "export/carol/month2.ipynb")
        z.writestr("export/carol/data.csv", "a,b\n")
    db = tmp_path / "g.db"
    args = ["grade", "month2", str(archive), "--gradebook", str(db), "--workers", "2", *ISO]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert scores(db) == {"alice": (15.0, "graded"), "carol": (0.0, "graded")}
    ids = rows(db, "SELECT id FROM submissions ORDER BY id")
    regrade = runner.invoke(app, [*args, "--regrade"])
    assert "2 to grade, 0 unchanged" in regrade.stderr
    assert scores(db) == {"alice": (15.0, "graded"), "carol": (0.0, "graded")}
    assert rows(db, "SELECT id FROM submissions ORDER BY id") != ids  # graded again


@pytest.mark.kernel
@pytest.mark.slow
def test_a_dead_or_hung_grading_process_becomes_an_errored_record(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(solution("month2"), folder / "alice.ipynb")
    # the learner's code kills the process grading it (its kernel's parent)
    write(notebook_from_cells("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
          folder / "killer.ipynb")
    write(notebook_from_cells("import time\ntime.sleep(120)"), folder / "sleeper.ipynb")
    db = tmp_path / "g.db"
    hard = min(scaled(8), 100)  # alice's whole grading fits it however busy the machine is
    result = runner.invoke(app, ["grade", "month2", str(folder), "--gradebook", str(db),
                                 "--workers", "2", "--cell-timeout", "110", "--hard-timeout",
                                 f"{hard:g}", *ISO])
    assert result.exit_code == 0, result.stderr
    query = ("SELECT l.name, s.status, s.problem, s.reason, s.score FROM submissions s "
             "JOIN learners l ON l.id = s.learner_id")
    got = {r[0]: r[1:] for r in rows(db, query)}
    assert got["alice"] == ("graded", None, None, 15.0)
    assert got["killer"][:2] == ("errored", "worker_died")
    assert got["killer"][2] == "the grading process was killed by SIGKILL (out of memory?)"
    assert got["sleeper"][:2] == ("errored", "worker_timeout")
    assert got["sleeper"][2].startswith(f"grading took longer than {hard:g} s and was stopped")
    assert "1 full marks, 2 errored" in result.stderr


@pytest.mark.kernel
@pytest.mark.slow
def test_grade_on_a_dask_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    folder = tmp_path / "in"
    write(solution("month2"), folder / "alice.ipynb")
    shutil.copyfile(STARTER, folder / "carol.ipynb")
    db = tmp_path / "g.db"
    with distributed.LocalCluster(processes=True, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        result = runner.invoke(app, ["grade", "month2", str(folder), "--gradebook", str(db),
                                     "--scheduler", cluster.scheduler_address, *ISO])
    assert result.exit_code == 0, result.stderr
    assert f"Dask scheduler {cluster.scheduler_address}" in result.stderr
    assert scores(db) == {"alice": (15.0, "graded"), "carol": (0.0, "graded")}
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.kernel
@requires(BUBBLEWRAP)  # where bubblewrap works, any exit 3 (sandbox unavailable) is a failure
def test_grade_uses_the_namespaced_sandbox_by_default(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(solution("month2"), folder / "alice.ipynb")
    db = tmp_path / "g.db"
    result = runner.invoke(app, ["grade", "month2", str(folder), "--gradebook", str(db),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.stderr
    (stored,) = rows(db, "SELECT result_json FROM submissions")
    assert json.loads(str(stored[0]))["isolation"] in ("namespaced", "namespaced+cgroup")
    assert scores(db) == {"alice": (15.0, "graded")}


@pytest.mark.kernel
def test_a_machine_that_cannot_start_kernels_stops_the_batch_and_records_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copies(tmp_path / "in", 2)
    db = tmp_path / "g.db"
    monkeypatch.setenv("MLGRADE_KERNEL_PYTHON", str(tmp_path / "no-such-python"))
    result = runner.invoke(app, ["grade", "month2", str(folder), "--gradebook", str(db),
                                 "--workers", "1", *ISO])
    assert result.exit_code == 3, result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "error: grading stopped: could not start a Python kernel")
    assert rows(db, "SELECT COUNT(*) FROM submissions") == [(0,)]


def test_scheduler_without_dask_installed_is_one_clear_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copies(tmp_path / "in", 1)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    result = runner.invoke(app, ["grade", "month2", str(folder), "--gradebook",
                                 str(tmp_path / "g.db"), "--scheduler", "tcp://127.0.0.1:8786",
                                 *ISO])
    assert result.exit_code == 3
    assert result.stderr == ("error: --scheduler needs the optional Dask support: "
                             "pip install 'mlgrade[cluster]'.\n")


def test_usage_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["grade", "month2", str(tmp_path / "empty"), "--gradebook",
                                str(tmp_path / "g.db"), *ISO])
    assert empty.exit_code == 2 and "no notebook to grade in" in empty.stderr
    missing = runner.invoke(app, ["report", "--gradebook", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and "no gradebook at" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    for cmd in (["export"], ["feedback", "month2"]):
        res = runner.invoke(app, [*cmd, "--gradebook", str(tmp_path / "nope.db")])
        assert res.exit_code == 2 and "Run `mlgrade grade" in res.stderr
    bad = runner.invoke(app, ["grade", "month2", str(tmp_path), "--workers", "0", *ISO])
    assert bad.exit_code == 2 and "--workers must be 1 or more" in bad.stderr


def test_every_batch_command_has_help() -> None:
    for cmd in ("grade", "report", "export", "feedback", "adjust"):
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and "--gradebook" in res.stdout
