"""The SQLite gradebook, exports, report maths and the HTML page (no kernel)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.timing import scaled

from mlgrade import results as r
from mlgrade.batch import gradebook as gb_module
from mlgrade.batch.export import ExportFormat
from mlgrade.batch.export import render as export
from mlgrade.batch.feedback import result_from_dict
from mlgrade.batch.gradebook import MIGRATIONS, Gradebook, open_existing
from mlgrade.batch.report import bin_label, build_reports, histogram
from mlgrade.errors import GradebookError, UsageError
from mlgrade.render import html


def result(earned: tuple[float, float], status: str = "graded", feedback: str = "",
           reason: str | None = None) -> dict[str, Any]:
    tests = (r.TestResult("test_a", "A <b>", "q1", 1.0, earned[0],
                        r.TestStatus.PASSED if earned[0] else r.TestStatus.FAILED, feedback),
             r.TestResult("test_b", "B", "q2", 2.0, earned[1],
                        r.TestStatus.PASSED if earned[1] else r.TestStatus.FAILED, ""))
    return r.GradeResult("m", "Month M", "x.ipynb", 7, r.SubmissionStatus(status), tests,
                       r.Execution(3, 3), 1.5, "none", "0.1.0", "g1", reason).to_dict()


def record(book: Gradebook, learner: str, res: dict[str, Any], digest: str = "h",
           problem: str | None = None) -> None:
    book.record(learner=learner, assignment="m", assignment_title="Month M", assignment_max=3.0,
                source=f"{learner}.ipynb", content_hash=digest, result=res, problem=problem)


def test_migrations_are_named_recorded_and_applied_once(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Gradebook(db) as book:
        assert book.migrations() == [name for name, _ in MIGRATIONS]
        assert book.migrate() == []
        assert book.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_old_gradebook_is_upgraded_in_place(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "old.db"
    monkeypatch.setattr(gb_module, "MIGRATIONS", MIGRATIONS[:1])
    Gradebook(db).close()
    monkeypatch.setattr(gb_module, "MIGRATIONS", MIGRATIONS)
    with Gradebook(db) as book:
        assert book.migrations() == [name for name, _ in MIGRATIONS]
        assert book.migrations()[2:] == ["0003_adjustments", "0004_due_dates",
                                         "0005_code_fingerprints", "0006_assignment_seeds"]
        record(book, "ann", result((1, 2)), problem="timeout")
        assert book.submissions()[0].problem == "timeout"


def test_a_gradebook_from_a_newer_mlgrade_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    Gradebook(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO migrations VALUES ('0099_future', 'now')")
    with pytest.raises(GradebookError, match="newer mlgrade .*0099_future.*Upgrade mlgrade"):
        Gradebook(db)


def test_not_a_database_and_missing_gradebook_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GradebookError, match="cannot be used as a gradebook"):
        Gradebook(junk)
    with pytest.raises(GradebookError, match="no gradebook at .*Run `mlgrade grade"):
        open_existing(tmp_path / "missing.db")


def test_recording_again_replaces_the_learner_row_and_its_tests(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "ann", result((0, 0)), digest="h1")
        record(book, "ann", result((1, 2)), digest="h2")
        record(book, "bob", result((1, 0)))
        subs = book.submissions("m")
        assert [(s.learner, s.score, s.content_hash) for s in subs] == [
            ("ann", 3.0, "h2"), ("bob", 1.0, "h")]
        assert len(book.test_rows()) == 4
        assert book.up_to_date("m", "g1", 7) == {"ann": "h2", "bob": "h"}
        assert book.up_to_date("m", "g1", 8) == {}
        assert book.integrity_ok()


def test_export_csv_one_row_per_learner_with_detail_columns(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "bob", result((1, 0)))
        record(book, "=cmd", result((0, 2)))
        record(book, "ann", result((0, 0), status="errored", reason="boom"))
        head = "learner,m,m:max,m:percent,m:status,m:late,m:original,m:adjusted"
        assert export(book, ExportFormat.CSV) == (
            f"{head}\n'=cmd,2,3,66.7,graded,,2,\nann,0,3,0,errored,,0,\n"
            "bob,1,3,33.3,graded,,1,\n")
        detail = export(book, ExportFormat.CSV, detail=True).splitlines()
        assert detail[0] == f"{head},m:test_a,m:test_b"
        assert detail[3] == "bob,1,3,33.3,graded,,1,,1,0"
        rows = json.loads(export(book, ExportFormat.JSON, detail=True))
        assert rows[2] == {"learner": "bob", "m": 1.0, "m:max": 3.0, "m:percent": 33.3,
                           "m:status": "graded", "m:late": "", "m:original": 1.0,
                           "m:adjusted": None, "m:test_a": 1.0, "m:test_b": 0.0}
        excel = export(book, ExportFormat.CSV, bom=True)
        assert excel.startswith("\ufefflearner,") and excel.endswith("\r\n")


def test_report_orders_tests_hardest_first_and_lists_problems(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "ann", result((1, 0)))
        record(book, "bob", result((1, 2)), problem="timeout")
        record(book, "cat", result((0, 0), status="errored", reason="the grading process was "
                                   "killed by SIGKILL"), problem="worker_died")
        (rep,) = build_reports(book, "m")
        assert [(t.test_id, t.passed, t.total) for t in rep.tests] == [
            ("test_b", 1, 3), ("test_a", 2, 3)]
        assert [(p.learner, p.problem) for p in rep.problems] == [
            ("bob", "timeout"), ("cat", "worker_died")]
        assert rep.problems[1].reason.endswith("SIGKILL")
        assert (rep.submissions, rep.graded, rep.errored, rep.full_marks) == (3, 2, 1, 1)
        assert rep.mean == pytest.approx(4 / 3, abs=1e-4) and rep.median == 1.0
        with pytest.raises(UsageError, match="no submissions for 'm2'"):
            build_reports(book, "m2")


def test_histogram_has_integer_bins_and_a_full_marks_bin() -> None:
    bins = histogram([0.0, 0.5, 1.0, 1.5, 15.0, 14.9], 15.0)
    assert len(bins) == 16 and bins[0] == (0.0, 1.0, 2) and bins[1] == (1.0, 2.0, 2)
    assert bins[14] == (14.0, 15.0, 1) and bins[-1] == (15.0, 15.0, 1)  # full marks alone
    assert [bin_label(lo, hi) for lo, hi, _ in bins][-3:] == ["13", "14", "15"]
    wide = histogram([0.0, 39.0, 40.0, 99.0, 100.0], 100.0)
    assert len(wide) == 21 and wide[0] == (0.0, 5.0, 1) and wide[7] == (35.0, 40.0, 1)
    assert bin_label(*wide[8][:2]) == "40-44" and wide[-1] == (100.0, 100.0, 1)


def test_html_page_is_escaped_and_self_contained() -> None:
    res = result_from_dict(result((0, 2), feedback='<script>alert("x")</script> & co'))
    page = html.render(res)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page
    assert "A &lt;b&gt;" in page and "Score: 2 / 3" in page
    assert "http" not in page and "src=" not in page  # nothing fetched from anywhere


def test_result_json_round_trips() -> None:
    data = result((1, 0), status="errored", reason="r")
    assert result_from_dict(data).to_dict() == data


def _open_at_once(path: str, barrier: object, results: object) -> None:
    from mlgrade.batch.gradebook import Gradebook

    barrier.wait()  # type: ignore[attr-defined]
    try:
        with Gradebook(Path(path)):
            results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # reported to the test
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_several_runs_creating_one_gradebook_at_once_all_succeed(tmp_path: Path) -> None:
    """Switching a new file to WAL can answer "database is locked" at once; opening retries."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    outcomes = []
    for round_ in range(30):
        path = str(tmp_path / f"g{round_}.db")
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(path, barrier, results)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        outcomes += [results.get(timeout=scaled(10)) for _ in procs]
    assert [o for o in outcomes if o != "ok"] == []
