"""What leads and learners read from a real SQLite gradebook, no kernel: feedback pages, the
report command's output, adjustments' author, the export's status, the dashboard's charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from tests.batch.helpers import MistakeRows

from mlgrade import results as r
from mlgrade.batch.feedback import FeedbackFormat, write_feedback
from mlgrade.batch.gradebook import Gradebook


def result(earned: tuple[float, float], status: str = "graded", feedback: str = "",
           reason: str | None = None, timed_out: bool = False) -> dict[str, Any]:
    tests = (r.TestResult("test_a", "`a` works", "q1", 1.0, earned[0],
                          r.TestStatus.PASSED if earned[0] else r.TestStatus.FAILED, feedback),
             r.TestResult("test_b", "B <b>bold</b>", "q2", 2.0, earned[1],
                          r.TestStatus.PASSED if earned[1] else r.TestStatus.FAILED, ""))
    return r.GradeResult("m", "Month M", "x.ipynb", 7, r.SubmissionStatus(status), tests,
                         r.Execution(3, 3, timed_out=timed_out), 1.5, "none", "0.1.0", "g1",
                         reason=reason).to_dict()


def record(book: Gradebook, learner: str, earned: tuple[float, float], **kw: Any) -> None:
    problem = kw.pop("problem", None)
    book.record(learner=learner, assignment="m", assignment_title="Month M", assignment_max=3.0,
                source=f"{learner}.ipynb", content_hash=learner, result=result(earned, **kw),
                problem=problem)


def test_feedback_pages_show_code_spans_as_code_and_learner_text_as_text(tmp_path: Path) -> None:
    with Gradebook(tmp_path / "g.db") as book:
        record(book, "ann", (0, 2), feedback="`a(x)` returned '<img src=x>' *twice*")
        (written,) = write_feedback(book, "m", tmp_path / "fb",
                                    (FeedbackFormat.HTML, FeedbackFormat.MARKDOWN))
    page, md = (p.read_text(encoding="utf-8") for p in written.paths)
    assert "<code>a</code> works" in page and "<code>a(x)</code> returned" in page
    assert "<img" not in page and "&lt;img src=x&gt;" in page and "<em>" not in page
    shown = MarkdownIt("commonmark").enable("table").render(md)
    assert "<code>a</code> works" in shown and "<code>a(x)</code> returned" in shown
    assert "<img" not in shown and "<em>" not in shown and "*twice*" in shown
    assert "B &lt;b&gt;bold&lt;/b&gt;" in shown


def _cli(*args: str, env: dict[str, str | None] | None = None, cwd: Path | None = None) -> Any:
    import os

    from typer.testing import CliRunner

    from mlgrade.cli import app

    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        return CliRunner().invoke(app, list(args), env=env)
    finally:
        os.chdir(here)


def test_report_html_prints_only_where_it_wrote(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Gradebook(db) as book:
        record(book, "ann", (1, 2))
        record(book, "bob", (0, 2))
    page = tmp_path / "site" / "index.html"
    done = _cli("report", "--gradebook", str(db), "--html", str(page))
    assert done.exit_code == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"wrote {page} and feedback pages under {page.parent / 'feedback'}/"]
    assert page.is_file() and (page.parent / "feedback" / "m" / "ann.html").is_file()
    # asked for explicitly, the report is printed as well
    both = _cli("report", "--gradebook", str(db), "--html", str(page), "--format", "json")
    assert both.exit_code == 0 and '"assignment": "m"' in both.stdout
    text = _cli("report", "--gradebook", str(db))
    assert "score distribution" in text.stdout


def _git_env(home: Path, name: str | None) -> dict[str, str | None]:
    config = home / "gitconfig"
    config.write_text(f"[user]\n\tname = {name}\n" if name else "", encoding="utf-8")
    return {"USER": None, "LOGNAME": None, "LNAME": None, "USERNAME": None,
            "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(home)}


def test_adjust_names_its_author_without_user(tmp_path: Path) -> None:
    import os
    import pwd
    import shutil

    db = tmp_path / "g.db"
    with Gradebook(db) as book:
        record(book, "ann", (1, 0))
    args = ("adjust", "m", "ann", "--test", "q2", "--points", "1", "--reason", "ok",
            "--gradebook", str(db))
    if shutil.which("git"):
        done = _cli(*args, env=_git_env(tmp_path, "Ada Lovelace"), cwd=tmp_path)
        assert done.exit_code == 0, done.stderr
        with Gradebook(db) as book:
            assert book.adjustments("m")[-1].made_by == "Ada Lovelace"
    done = _cli(*args, env=_git_env(tmp_path, None), cwd=tmp_path)
    assert done.exit_code == 0, done.stderr
    with Gradebook(db) as book:
        made_by = book.adjustments("m")[-1].made_by
    # the login name from the password database, never "unknown"
    assert made_by == pwd.getpwuid(os.getuid()).pw_name != "unknown"
    done = _cli(*args, "--by", "lead two", env=_git_env(tmp_path, "Ada Lovelace"), cwd=tmp_path)
    assert done.exit_code == 0, done.stderr
    with Gradebook(db) as book:
        assert book.adjustments("m")[-1].made_by == "lead two"


def test_export_status_says_what_happened(tmp_path: Path) -> None:
    import csv
    import io
    import json

    from mlgrade.batch.export import ExportFormat, render, write_xlsx
    from mlgrade.batch.report import build_reports
    from mlgrade.batch.workers import classify

    with Gradebook(tmp_path / "g.db") as book:
        record(book, "ann", (1, 2))
        slow = result((1, 0), timed_out=True)
        book.record(learner="bob", assignment="m", assignment_title="Month M", assignment_max=3.0,
                    source="bob.ipynb", content_hash="b", result=slow, problem=classify(slow))
        record(book, "cat", (0, 0), status="errored", reason="the graders broke",
               problem="errored")
        rows = {row["learner"]: row for row in csv.DictReader(io.StringIO(
            render(book, ExportFormat.CSV)))}
        doc = {row["learner"]: row for row in json.loads(render(book, ExportFormat.JSON))}
        write_xlsx(book, tmp_path / "g.xlsx")
        problems = {p.learner: p.problem for p in build_reports(book)[0].problems}
    assert {who: row["m:status"] for who, row in rows.items()} == {
        "ann": "graded", "bob": "timeout", "cat": "errored"}
    assert {who: row["m:status"] for who, row in doc.items()} == {
        "ann": "graded", "bob": "timeout", "cat": "errored"}
    assert problems == {"bob": "timeout", "cat": "errored"}  # the same words as the report
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "g.xlsx").active
    header = [c.value for c in sheet[1]]
    status = header.index("m:status")
    assert [row[status].value for row in sheet.iter_rows(min_row=2)] == [
        "graded", "timeout", "errored"]


def _scored(book: Gradebook, learner: str, score: float, top: int = 15) -> None:
    """A submission of a ``top``-point assignment "h" (one-point tests) scoring ``score``."""
    tests = tuple(r.TestResult(f"test_{i}", f"test {i}", "q1", 1.0, min(1.0, max(0.0, score - i)),
                               r.TestStatus.PASSED if score >= i + 1 else r.TestStatus.FAILED, "")
                  for i in range(top))
    doc = r.GradeResult("h", "Month H", "x.ipynb", 7, r.SubmissionStatus.GRADED, tests,
                        r.Execution(3, 3), 1.5, "none", "0.1.0", "g1").to_dict()
    book.record(learner=learner, assignment="h", assignment_title="Month H",
                assignment_max=float(top), source=f"{learner}.ipynb", content_hash=learner,
                result=doc, problem=None)


def _histogram_svg(tmp_path: Path, scores: list[float]) -> Any:
    import xml.etree.ElementTree as ET

    from mlgrade.batch.dashboard import render as dashboard
    from mlgrade.batch.report import build_reports

    with Gradebook(tmp_path / f"{len(scores)}-{sum(scores)}.db") as book:
        for i, score in enumerate(scores):
            _scored(book, f"l{i}", score)
        page = dashboard(build_reports(book), tmp_path / "g.db")
    start = page.index('<svg class="histogram"')
    svg = page[start:page.index("</svg>", start) + len("</svg>")]
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns:x="x" ', 1))


def _centre(svg: Any, label: str) -> float:
    (bar,) = [b for b in svg.iter("rect") if b.get("data-bin") == label]
    return float(bar.get("x")) + float(bar.get("width")) / 2


def _marker_x(svg: Any, css: str) -> float:
    (line,) = [ln for ln in svg.iter("line") if ln.get("class") == css]
    assert line.get("x1") == line.get("x2")
    return float(line.get("x1"))


def test_dashboard_mean_and_median_sit_on_their_scores(tmp_path: Path) -> None:
    import pytest

    svg = _histogram_svg(tmp_path, [6, 7, 8])  # mean 7, median 7
    assert _marker_x(svg, "mean") == pytest.approx(_centre(svg, "7"), abs=0.02)
    assert _marker_x(svg, "median") == pytest.approx(_centre(svg, "7"), abs=0.02)
    svg = _histogram_svg(tmp_path, [7, 8])  # 7.5: halfway between the bars of 7 and 8
    halfway = (_centre(svg, "7") + _centre(svg, "8")) / 2
    assert _marker_x(svg, "mean") == pytest.approx(halfway, abs=0.02)
    svg = _histogram_svg(tmp_path, [15, 15, 0])  # mean 10, median full marks
    assert _marker_x(svg, "mean") == pytest.approx(_centre(svg, "10"), abs=0.02)
    assert _marker_x(svg, "median") == pytest.approx(_centre(svg, "15"), abs=0.02)


def test_text_report_lists_only_the_scores_that_occur(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Gradebook(db) as book:
        for i, score in enumerate([6, 7, 7, 8, 15]):
            _scored(book, f"l{i}", score)
    done = _cli("report", "--gradebook", str(db))
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("score distribution"))
    rows = [ln.strip("│ ").split("│") for ln in lines[start + 4:start + 12] if ln.startswith("│")]
    assert [(a.strip(), b.strip(), c.strip()) for a, b, c in rows] == [
        ("6", "1", "#"), ("7", "2", "##"), ("8", "1", "#"), ("15 (full marks)", "1", "#")]
    # a big group: the longest bar is 40 characters, the others in proportion
    big = tmp_path / "big.db"
    with Gradebook(big) as book:
        for i, score in enumerate([7] * 80 + [8] * 20):
            _scored(book, f"l{i}", score)
    lines = _cli("report", "--gradebook", str(big)).stdout.splitlines()
    bars = [ln.split("│")[3].strip() for ln in lines if ln.startswith("│ 7 ") or ln.startswith("│ 8 ")]
    assert bars == ["#" * 40, "#" * 10]


def test_the_groups_mistakes_are_grouped_by_hint_in_the_report_and_the_dashboard(
        tmp_path: Path) -> None:
    """Learners who failed a test with the same hint (their own numbers aside) form one row:
    in `mlgrade report` (text and JSON) and in the dashboard, each name linking to feedback."""
    import json

    db = tmp_path / "g.db"
    with Gradebook(db) as book:
        record(book, "ann", (0, 2), feedback="`a(x)` is 0.41, off by a factor of 2")
        record(book, "bob", (0, 2), feedback="`a(x)` is 0.38, off by a factor of 2")
        record(book, "cy", (0, 2), feedback="`a` is not implemented yet")
        record(book, "dee", (1, 2))
    done = _cli("report", "--gradebook", str(db), "-f", "json")
    assert done.exit_code == 0, done.stderr
    (rep,) = json.loads(done.stdout)
    assert [(m["test_id"], m["learners"]) for m in rep["mistakes"]] == [
        ("test_a", ["ann", "bob"]), ("test_a", ["cy"])]
    assert rep["mistakes"][0]["hint"] in ("`a(x)` is 0.41, off by a factor of 2",
                                          "`a(x)` is 0.38, off by a factor of 2")
    text = _cli("report", "--gradebook", str(db)).stdout
    assert "mistakes the group made" in text
    row = next(ln for ln in text.splitlines() if "ann, bob" in ln)
    assert [c.strip() for c in row.split("│")][1:4] == ["q1", "`a` works", "2"]
    site = tmp_path / "site" / "index.html"
    assert _cli("report", "--gradebook", str(db), "--html", str(site)).exit_code == 0

    parser = MistakeRows()
    parser.feed(site.read_text(encoding="utf-8"))
    assert parser.rows == [("test_a", "2", ["feedback/m/ann.html", "feedback/m/bob.html"]),
                           ("test_a", "1", ["feedback/m/cy.html"])]
    assert all((site.parent / link).is_file() for _, _, links in parser.rows for link in links)
