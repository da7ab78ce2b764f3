"""Lead tools on a real SQLite gradebook, no kernel: adjustments, due dates and lateness,
secret seeds, copy detection, exports a spreadsheet opens, and the dashboard's escaping."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tests.batch.helpers import renamed_copy, unrelated_solution
from tests.conftest import REPO, solution

from mlgrade import results as r
from mlgrade.assignments import load_assignment
from mlgrade.batch.adjust import apply_adjustment
from mlgrade.batch.dashboard import render as dashboard
from mlgrade.batch.due import lateness, read_times_csv, resolve_due, submitted_at
from mlgrade.batch.export import ExportFormat, write_xlsx
from mlgrade.batch.export import render as export
from mlgrade.batch.feedback import FeedbackFormat, write_feedback
from mlgrade.batch.gradebook import Gradebook, Provenance
from mlgrade.batch.marks import marks
from mlgrade.batch.report import build_reports
from mlgrade.batch.similarity import copied_pairs, jaccard, normalised_tokens
from mlgrade.batch.submissions import Submission
from mlgrade.config import DEFAULT_SEED, SeedOrigin, resolve_settings
from mlgrade.errors import UsageError

STARTER = (REPO / "assignments" / "month2" / "month2.ipynb").read_bytes()


def result(earned: tuple[float, float], status: str = "graded") -> dict[str, Any]:
    tests = (r.TestResult("test_a", "`a` works", "q1", 1.0, earned[0],
                          r.TestStatus.PASSED if earned[0] else r.TestStatus.FAILED, ""),
             r.TestResult("test_b", "B <b>bold</b>", "q2", 2.0, earned[1],
                          r.TestStatus.PASSED if earned[1] else r.TestStatus.FAILED, ""))
    return r.GradeResult("m", "Month M", "x.ipynb", 7, r.SubmissionStatus(status), tests,
                         r.Execution(3, 3), 1.5, "none", "0.1.0", "g1").to_dict()


def record(book: Gradebook, learner: str, earned: tuple[float, float], digest: str = "h",
           when: str | None = None, tokens: str = "") -> None:
    book.record(learner=learner, assignment="m", assignment_title="Month M", assignment_max=3.0,
                source=f"{learner}.ipynb", content_hash=digest, result=result(earned),
                problem=None, provenance=Provenance(when, "mtime" if when else None, (), tokens))


def adjust(book: Gradebook, learner: str, **kw: Any) -> str:
    args: dict[str, Any] = {"test": None, "points": None, "total": None, "reason": "ok",
                            "by": "lead", "undo": False, **kw}
    return apply_adjustment(book, assignment="m", learner=learner, **args)


def test_adjustments_apply_survive_regrades_of_the_same_bytes_and_undo(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "ann", (1, 0), digest="h1")
        assert adjust(book, "ann", test="q2", points=1.5, reason="alternative accepted") == (
            "ann on m: 2.5/3 (graders gave 1; adjustments: test_b = 1.5)")
        record(book, "ann", (1, 0), digest="h1")  # a regrade of the same notebook
        (mark,) = marks(book, "m")
        assert (mark.original, mark.adjusted, mark.final, mark.is_adjusted) == (1, 2.5, 2.5, True)
        assert mark.adjustments[0].made_by == "lead"
        adjust(book, "ann", total=3, reason="late fix accepted")
        assert marks(book, "m")[0].final == 3
        adjust(book, "ann", undo=True)  # undoes the total, keeps the test adjustment
        assert marks(book, "m")[0].final == 2.5
        csv_text = export(book, ExportFormat.CSV).splitlines()
        assert csv_text[1] == "ann,2.5,3,83.3,graded,,1,2.5"
        fb = write_feedback(book, "m", tmp_path / "fb", (FeedbackFormat.MARKDOWN,))
        text = fb[0].paths[0].read_text()
        assert "Adjusted by lead" in text and "Reason: alternative accepted" in text
        assert "2.5 / 3" in text or "2.5/3" in text
        (rep,) = build_reports(book, "m")
        assert [(a.learner, a.target, a.applied) for a in rep.adjustments] == [
            ("ann", "test_b", True)]
        record(book, "ann", (0, 0), digest="h2")  # the learner handed in something else
        (mark,) = marks(book, "m")
        assert (mark.final, mark.is_adjusted, len(mark.stale)) == (0, False, 1)
        with pytest.raises(UsageError, match="no adjustment of test test_b"):
            adjust(book, "ann", test="test_b", undo=True)


def test_adjust_refuses_bad_requests_in_one_line(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "ann", (1, 0))
        for kw, message in (({"test": "q9", "points": 1}, "not a test of this submission"),
                            ({"test": "q2", "points": 5}, "between 0 and 2"),
                            ({"test": "q2"}, "--test needs --points"),
                            ({"total": 1, "reason": " "}, "--reason is required"),
                            ({}, "say what to adjust"),
                            ({"points": 1}, "--points goes with --test")):
            with pytest.raises(UsageError, match=message):
                adjust(book, "ann", **kw)
        with pytest.raises(UsageError, match="no m submission from 'zed' .*learners: ann"):
            adjust(book, "zed", total=1)


def test_late_flags_and_the_optional_penalty(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "ann", (1, 2), when="2026-03-01T23:00:00+00:00")
        record(book, "bob", (1, 2), when="2026-03-03T01:00:00+00:00")
        book.set_due(assignment="m", title="Month M", max_score=3, due="2026-03-01T23:59:00+00:00",
                     late_penalty=None)
        got = {m.learner: (m.late.late, m.late.days, m.final) for m in marks(book, "m")}
        assert got == {"ann": (False, 0, 3), "bob": (True, 2, 3)}  # flagged, no penalty
        book.set_due(assignment="m", title="Month M", max_score=3, due=None, late_penalty=0.5)
        assert marks(book, "m")[1].final == 2.0
        assert export(book, ExportFormat.CSV).splitlines()[2] == "bob,2,3,66.7,graded,yes,3,"
        adjust(book, "bob", total=2.5, reason="penalty waived in part")  # the final word
        assert export(book, ExportFormat.CSV).splitlines()[2] == "bob,2.5,3,83.3,graded,yes,3,2.5"
        # an unchanged submission's file time never moves it later; the lead's CSV does
        book.refresh(learner="ann", assignment="m",
                     provenance=Provenance("2026-04-01T00:00:00+00:00", "mtime"))
        assert not marks(book, "m")[0].late.late
        book.refresh(learner="ann", assignment="m",
                     provenance=Provenance("2026-04-01T00:00:00+00:00", "csv"))
        assert marks(book, "m")[0].late.days == 31
    assert lateness("2026-03-02T00:00:00", "2026-03-01T23:59:00+00:00", 10, 4).penalty == 4


def test_due_date_from_assignment_toml_cli_csv_and_git(tmp_path: Path) -> None:
    folder = tmp_path / "root" / "assignments" / "month2"
    shutil.copytree(REPO / "assignments" / "month2", folder)
    shutil.copytree(REPO / "graders" / "month2", tmp_path / "root" / "graders" / "month2")
    toml = folder / "assignment.toml"
    toml.write_text("due = 2026-03-01T23:59:00+01:00\nlate_penalty = 1\n" + toml.read_text())
    a = load_assignment(folder)
    policy = resolve_due(a, None, None)
    assert policy.due == datetime(2026, 3, 1, 22, 59, tzinfo=timezone.utc)
    assert policy.late_penalty == 1.0
    assert resolve_due(a, "2026-04-01", 0).due == datetime(2026, 4, 1, tzinfo=timezone.utc)
    with pytest.raises(UsageError, match="--due: 'soon' is not a date"):
        resolve_due(a, "soon", None)

    times = tmp_path / "times.csv"
    times.write_text("\ufefflearner,timestamp\nZoë,2026-02-28T10:00:00Z\n", encoding="utf-8")
    assert read_times_csv(times) == {"zoë": datetime(2026, 2, 28, 10, tzinfo=timezone.utc)}

    repo = tmp_path / "in" / "carol"
    repo.mkdir(parents=True)
    (repo / "month2.ipynb").write_bytes(STARTER)
    env = {**os.environ, "GIT_AUTHOR_NAME": "c", "GIT_AUTHOR_EMAIL": "c@x",
           "GIT_COMMITTER_NAME": "c", "GIT_COMMITTER_EMAIL": "c@x",
           "GIT_COMMITTER_DATE": "2026-03-05T12:00:00+00:00",
           "GIT_AUTHOR_DATE": "2026-03-05T12:00:00+00:00"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "done"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True)
    sub = Submission("carol", repo / "month2.ipynb", "carol/month2.ipynb", "h", repo)
    assert submitted_at(sub, None) == ("2026-03-05T12:00:00+00:00", "git")
    plain = Submission("dan", repo / "month2.ipynb", "dan.ipynb", "h")
    os.utime(plain.path, (1767225600, 1767225600))
    assert submitted_at(plain, None) == ("2026-01-01T00:00:00+00:00", "mtime")


def test_grade_seeds_are_drawn_once_per_gradebook_and_platform_seeds_per_run(
        tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        first = book.assignment_seed("m", lambda: 123)
        assert first == 123 and book.assignment_seed("m", lambda: 456) == 123
        assert book.seeds() == {"m": 123}
    drawn = {resolve_settings({}, None, {}, official=True).seed for _ in range(5)}
    assert len(drawn) == 5 and DEFAULT_SEED not in drawn and all(0 < s < 2**32 for s in drawn)
    assert resolve_settings({}, None, {}, official=True).seed_origin is SeedOrigin.DRAWN
    pinned = resolve_settings({}, None, {"MLGRADE_SEED": "99"}, official=True)
    assert (pinned.seed, pinned.seed_origin) == (99, SeedOrigin.PINNED)
    assert resolve_settings({}, None, {}).seed == DEFAULT_SEED  # learners' own checks


def _fingerprint(nb: nbformat.NotebookNode) -> str:
    return normalised_tokens(nbformat.writes(nb).encode(), STARTER)


def test_identical_and_renamed_copies_are_flagged_unrelated_solutions_are_not() -> None:
    ref = _fingerprint(solution("month2"))
    renamed = _fingerprint(renamed_copy(solution("month2")))
    unrelated = _fingerprint(unrelated_solution())
    blank = _fingerprint(nbformat.reads(STARTER.decode(), as_version=4))
    assert blank == ""  # the starter is nobody's own code
    assert jaccard(ref, renamed) > 0.85 and jaccard(ref, unrelated) < 0.3
    pairs = copied_pairs([("ann", "h1", ref), ("bob", "h1", ref), ("cat", "h2", renamed),
                          ("dan", "h3", unrelated), ("eve", "h4", blank), ("fay", "h4", blank)])
    assert [(p.learner_a, p.learner_b, p.kind) for p in pairs] == [
        ("ann", "bob", "identical file"), ("ann", "cat", "near-identical code"),
        ("bob", "cat", "near-identical code")]
    assert pairs[0].similarity == 1.0 and 0.85 < pairs[1].similarity < 1


def test_export_csv_reads_back_with_csv_and_pandas_and_xlsx_with_openpyxl(
        tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "Zoë", (1, 2))
        record(book, "=cmd", (0, 2))
        text = export(book, ExportFormat.CSV, bom=True)
        (tmp_path / "g.csv").write_bytes(text.encode("utf-8"))
        with open(tmp_path / "g.csv", encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [row["learner"] for row in rows] == ["'=cmd", "Zoë"]
        assert rows[1]["m"] == "3" and rows[1]["m:max"] == "3" and rows[1]["m:percent"] == "100"
        frame = pd.read_csv(tmp_path / "g.csv")
        assert list(frame.columns)[:3] == ["learner", "m", "m:max"]  # the BOM is not in a name
        assert frame.loc[1, "learner"] == "Zoë" and frame.loc[0, "m:percent"] == pytest.approx(66.7)
        pytest.importorskip("openpyxl")
        from openpyxl import load_workbook

        write_xlsx(book, tmp_path / "g.xlsx")
        sheet = load_workbook(tmp_path / "g.xlsx").active
        values = [[c.value for c in row] for row in sheet.iter_rows()]
        assert values[0][:4] == ["learner", "m", "m:max", "m:percent"]
        assert values[1][:3] == ["=cmd", 2, 3] and sheet["A2"].data_type == "s"
        assert values[2][:5] == ["Zoë", 3, 3, 100, "graded"]
    assert list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[0][0] == "learner"


def test_dashboard_escapes_learner_text_and_fetches_nothing(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "<script>alert(1)</script>", (1, 2))
        record(book, "ann", (0, 2))
        adjust(book, "ann", total=1, reason='<img src=x onerror="alert(2)">')
        page = dashboard(build_reports(book), tmp_path / "g.db")
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page
    assert "B &lt;b&gt;bold&lt;/b&gt;" in page and "<code>a</code> works" in page
    assert "http" not in page and "src=" not in page.replace("src=x", "")
    assert 'href="feedback/m/ann.html"' in page


def test_a_zip_keeps_each_file_time_as_its_submitted_at_time(tmp_path: Path) -> None:
    import time
    import zipfile

    from mlgrade.batch.submissions import discover

    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(zipfile.ZipInfo("export/ann.ipynb", (2026, 2, 20, 12, 30, 0)), STARTER)
        z.writestr(zipfile.ZipInfo("export/bob.ipynb", (2026, 3, 4, 9, 0, 0)), STARTER)
    (tmp_path / "x").mkdir()
    found = discover(archive, "month2", tmp_path / "x")
    when = {s.learner: submitted_at(s, None) for s in found.submissions}
    local = time.mktime((2026, 2, 20, 12, 30, 0, 0, 0, -1))
    assert when["ann"] == (datetime.fromtimestamp(local, timezone.utc).isoformat(), "mtime")
    assert when["bob"][0] > when["ann"][0]


def test_dashboard_follows_the_group_across_assignments_in_order(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        for name, scores in (("month10", {"ann": (1, 2)}), ("month2", {"ann": (0, 2), "bob": (1, 0)})):
            for who, earned in scores.items():
                book.record(learner=who, assignment=name, assignment_title=name.title(),
                            assignment_max=3.0, source=f"{who}.ipynb", content_hash=who,
                            result=result(earned), problem=None)
        reports = build_reports(book)
        page = dashboard(reports, tmp_path / "g.db")
    assert [r.assignment for r in reports] == ["month2", "month10"]  # natural order
    assert page.index('id="a-month2"') < page.index('id="a-month10"')
    # month2: ann 2/3, bob 1/3 -> mean 50%; month10: ann 3/3 -> 100%
    means = re.findall(r'class="progress-mean"[^>]*>([^<]*)</text>', page)
    assert means == ["50%", "100%"]
    assert 'class="num cell missing" data-assignment="month10"' in page  # bob skipped month10
