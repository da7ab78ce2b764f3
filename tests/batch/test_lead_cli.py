"""A study-group lead's whole flow end to end, on real kernels, real SQLite and a real browser.

One class folder is graded once (module fixture, five kernels): a reference solution, a
byte-identical copy of it (Zoë, whose time comes from the lead's CSV), a disguised copy with
renamed variables handed in late, an independent solution, and the starter in a learner's own
git checkout next to a scratch notebook. The lead then adjusts one grade, regrades that learner
and writes the dashboard, which headless Chromium opens from the file.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from tests.batch.helpers import STARTER, renamed_copy, unrelated_solution, write
from tests.conftest import solution
from tests.probes import CHROMIUM, chromium_paths, requires
from typer.testing import CliRunner

from mlgrade.cli import app
from mlgrade.config import DEFAULT_SEED

runner = CliRunner()
ISO = ["--isolation", "none"]
DUE = "2026-03-01T23:59:00+00:00"


def stamp(path: Path, iso: str) -> None:
    from datetime import datetime

    t = datetime.fromisoformat(iso).timestamp()
    os.utime(path, (t, t))


def git_checkout(folder: Path, when: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "carol", "GIT_AUTHOR_EMAIL": "c@example.org",
           "GIT_COMMITTER_NAME": "carol", "GIT_COMMITTER_EMAIL": "c@example.org",
           "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "hand in"]):
        subprocess.run(["git", *cmd], cwd=folder, env=env, check=True, capture_output=True)


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


@dataclass
class Lead:
    folder: Path
    db: Path
    grade_err: str
    rerun_err: str
    adjust_err: str
    regrade_err: str
    report: dict[str, Any]
    site: Path
    html_err: str


@pytest.fixture(scope="module")
def lead(tmp_path_factory: pytest.TempPathFactory) -> Lead:
    tmp = tmp_path_factory.mktemp("lead")
    folder = tmp / "in"
    ref = solution("month2")
    write(ref, folder / "alice.ipynb")
    stamp(folder / "alice.ipynb", "2026-02-20T12:00:00+00:00")
    shutil.copyfile(folder / "alice.ipynb", folder / "zoë.ipynb")
    stamp(folder / "zoë.ipynb", "2026-03-10T12:00:00+00:00")  # the lead's CSV says otherwise
    write(renamed_copy(ref), folder / "bob.ipynb")
    stamp(folder / "bob.ipynb", "2026-03-03T12:00:00+00:00")  # two started days late
    write(unrelated_solution(), folder / "erin.ipynb")
    stamp(folder / "erin.ipynb", "2026-02-01T09:00:00+00:00")
    (folder / "carol").mkdir()
    shutil.copyfile(STARTER, folder / "carol" / "month2.ipynb")
    write(ref, folder / "carol" / "scratch.ipynb")
    git_checkout(folder / "carol", "2026-03-01T08:00:00+01:00")  # on time, by her last commit
    stamp(folder / "carol" / "month2.ipynb", "2026-03-09T08:00:00+00:00")  # a later copy
    times = tmp / "times.csv"
    times.write_text("learner,timestamp\nzoë,2026-02-28T10:00:00Z\n", encoding="utf-8")
    db = tmp / "group.db"
    args = ["grade", "month2", str(folder), "--gradebook", str(db), "--workers", "2",
            "--due", DUE, "--late-penalty", "0.5", "--submitted-at", str(times), *ISO]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    rerun = runner.invoke(app, args)
    assert rerun.exit_code == 0, rerun.stderr

    adjusted = runner.invoke(app, ["adjust", "month2", "carol", "--test", "q1", "--points", "1",
                                   "--reason", "prediction computed by hand, accepted",
                                   "--by", "lead <b>", "--gradebook", str(db)])
    assert adjusted.exit_code == 0, adjusted.stderr
    only_carol = tmp / "carol-only"
    shutil.copytree(folder / "carol", only_carol / "carol")
    regrade = runner.invoke(app, ["grade", "month2", str(only_carol), "--gradebook", str(db),
                                  "--regrade", "--due", DUE, *ISO])
    assert regrade.exit_code == 0, regrade.stderr

    rep = runner.invoke(app, ["report", "month2", "--gradebook", str(db), "-f", "json"])
    assert rep.exit_code == 0, rep.stderr
    site = tmp / "site"
    html = runner.invoke(app, ["report", "--gradebook", str(db), "--html",
                               str(site / "index.html")])
    assert html.exit_code == 0, html.stderr
    return Lead(folder, db, first.stderr, rerun.stderr, adjusted.stderr, regrade.stderr,
                json.loads(rep.stdout)[0], site, html.stderr)


def _marks(lead: Lead) -> dict[str, dict[str, Any]]:
    return {m["learner"]: m for m in lead.report["marks"]}


@pytest.mark.kernel
@pytest.mark.slow
def test_secret_seed_is_drawn_once_and_reruns_stay_incremental(lead: Lead) -> None:
    ((seed,),) = rows(lead.db, "SELECT seed FROM assignment_seeds")
    assert seed != DEFAULT_SEED
    assert rows(lead.db, "SELECT DISTINCT seed FROM submissions") == [(seed,)]
    assert "0 to grade, 5 unchanged" in lead.rerun_err
    shown = runner.invoke(app, ["report", "--gradebook", str(lead.db), "--show-seed"])
    assert f"seed {seed} (reproduce one grade: mlgrade check month2 NOTEBOOK --seed {seed})" \
        in shown.stdout
    assert "seed" not in lead.report  # only on request


@pytest.mark.kernel
@pytest.mark.slow
def test_times_late_flags_penalty_and_the_chosen_notebook(lead: Lead) -> None:
    assert "carol: grading carol/month2.ipynb; ignored carol/scratch.ipynb" in lead.grade_err
    assert "1 late submission(s) in the gradebook for month2" in lead.grade_err
    late = {item["learner"]: (item["submitted_from"], item["days"], item["penalty"])
            for item in lead.report["late"]}
    assert late == {"bob": ("mtime", 2, 1.0)}
    got = dict(rows(lead.db, "SELECT l.name, s.submitted_at || ' ' || s.submitted_from FROM "
                             "submissions s JOIN learners l ON l.id = s.learner_id"))
    assert got["zoë"] == "2026-02-28T10:00:00+00:00 csv"
    assert got["carol"] == "2026-03-01T08:00:00+01:00 git"
    top = lead.report["max_score"]
    marks = _marks(lead)
    assert (marks["bob"]["original"], marks["bob"]["score"], marks["bob"]["late"]) == (
        top, top - 1, True)
    assert not any(marks[who]["late"] for who in ("alice", "carol", "erin", "zoë"))
    assert lead.report["ignored"] == [{"learner": "carol", "graded": "carol/month2.ipynb",
                                       "ignored": ["carol/scratch.ipynb"]}]


@pytest.mark.kernel
@pytest.mark.slow
def test_identical_and_renamed_copies_are_flagged_and_scores_untouched(lead: Lead) -> None:
    pairs = {(p["learner_a"], p["learner_b"]): (p["kind"], p["similarity"])
             for p in lead.report["copies"]}
    assert set(pairs) == {("alice", "zoë"), ("alice", "bob"), ("bob", "zoë")}
    assert pairs[("alice", "zoë")] == ("identical file", 1.0)
    assert pairs[("alice", "bob")][0] == "near-identical code" and pairs[("alice", "bob")][1] > 0.85
    marks = _marks(lead)
    assert marks["alice"]["score"] == marks["zoë"]["score"] == lead.report["max_score"]
    assert marks["erin"]["status"] == "graded"  # the independent solution: never flagged


@pytest.mark.kernel
@pytest.mark.slow
def test_an_adjustment_survives_a_regrade_and_shows_everywhere(lead: Lead, tmp_path: Path) -> None:
    assert "carol on month2: 1/" in lead.adjust_err and "graders gave 0" in lead.adjust_err
    assert "1 to grade, 0 unchanged" in lead.regrade_err
    assert rows(lead.db, "SELECT COUNT(*) FROM adjustments WHERE undone_at IS NULL") == [(1,)]
    carol = _marks(lead)["carol"]
    assert (carol["original"], carol["score"], carol["adjusted"]) == (0, 1, True)
    (adj,) = lead.report["adjustments"]
    assert (adj["target"], adj["made_by"], adj["applied"]) == ("test_prediction", "lead <b>", True)

    out = runner.invoke(app, ["export", "--gradebook", str(lead.db)])
    header, *lines = list(csv.reader(out.stdout.splitlines()))
    row = dict(zip(header, next(line for line in lines if line[0] == "carol"), strict=True))
    assert (row["month2"], row["month2:original"], row["month2:adjusted"]) == ("1", "0", "1")
    fb = lead.site / "feedback" / "month2" / "carol.html"
    page = fb.read_text(encoding="utf-8")
    assert "prediction computed by hand, accepted" in page and "lead &lt;b&gt;" in page
    ((seed,),) = rows(lead.db, "SELECT seed FROM assignment_seeds")
    assert str(seed) not in page and "seed (secret, kept by your lead)" in page

    undo = runner.invoke(app, ["adjust", "month2", "carol", "--test", "test_prediction", "--undo",
                               "--gradebook", str(lead.db)])
    assert undo.exit_code == 0 and "carol on month2: 0/" in undo.stderr
    again = runner.invoke(app, ["adjust", "month2", "carol", "--test", "q1", "--points", "1",
                                "--reason", "prediction computed by hand, accepted", "--by",
                                "lead <b>", "--gradebook", str(lead.db)])
    assert again.exit_code == 0  # restored for the other tests' view of the gradebook
    bad = runner.invoke(app, ["adjust", "month2", "carol", "--total", "99", "--reason", "x",
                              "--gradebook", str(lead.db)])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --total must be between 0 and")


@pytest.mark.kernel
@pytest.mark.slow
def test_exports_open_cleanly_in_pandas_csv_and_openpyxl(lead: Lead, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    dest = tmp_path / "grades.csv"
    res = runner.invoke(app, ["export", "--gradebook", str(lead.db), "--output", str(dest)])
    assert res.exit_code == 0 and res.stderr == f"wrote {dest}\n"
    assert dest.read_bytes().startswith(b"\xef\xbb\xbflearner,")  # BOM: Excel reads "Zoë"
    with open(dest, encoding="utf-8-sig", newline="") as handle:
        table = {row["learner"]: row for row in csv.DictReader(handle)}
    assert sorted(table) == ["alice", "bob", "carol", "erin", "zoë"]
    assert table["bob"]["month2:late"] == "yes" and table["alice"]["month2:late"] == ""
    frame = pd.read_csv(dest).set_index("learner")
    assert frame.loc["zoë", "month2:percent"] == 100
    assert frame.loc["bob", "month2"] == frame.loc["bob", "month2:original"] - 1
    plain = runner.invoke(app, ["export", "--gradebook", str(lead.db)])
    assert plain.stdout.startswith("learner,")  # no BOM in a pipe
    pytest.importorskip("openpyxl")
    from openpyxl import load_workbook

    book = tmp_path / "grades.xlsx"
    res = runner.invoke(app, ["export", "--gradebook", str(lead.db), "-f", "xlsx", "-o", str(book)])
    assert res.exit_code == 0 and res.stderr == f"wrote {book}\n"
    sheet = load_workbook(book).active
    values = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["zoë"][1] == frame.loc["zoë", "month2"]
    missing = runner.invoke(app, ["export", "--gradebook", str(lead.db), "-f", "xlsx"])
    assert missing.exit_code == 2 and "pass --output" in missing.stderr


@pytest.mark.kernel
@pytest.mark.slow
def test_plot_is_written_at_the_path_printed(lead: Lead, tmp_path: Path) -> None:
    dest = tmp_path / "x"  # no suffix: still exactly this path, as a PNG
    res = runner.invoke(app, ["report", "--gradebook", str(lead.db), "--plot", str(dest)])
    assert res.exit_code == 0 and f"wrote {dest}\n" in res.stderr
    assert dest.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not Path(f"{dest}.png").exists()


def _browser(width: int) -> Any:
    found = chromium_paths()
    assert found is not None
    chromium, driver_bin = found
    from selenium import webdriver  # the dev extra's

    os.environ.setdefault("SE_OFFLINE", "true")  # never download a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},1000"):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(driver_bin))


@pytest.mark.kernel
@pytest.mark.slow
@requires(CHROMIUM)  # skipped without it on a laptop; .ci/run installs it, CI=true fails
def test_dashboard_shows_the_right_numbers_in_chromium(lead: Lead) -> None:
    from selenium.webdriver.common.by import By

    page = lead.site / "index.html"
    assert f"wrote {page} and feedback pages under {lead.site / 'feedback'}/" in lead.html_err
    shots = Path(os.environ.get("MLGRADE_SCREENSHOTS", str(lead.site)))
    shots.mkdir(parents=True, exist_ok=True)
    rep, marks = lead.report, _marks(lead)
    for width in (1280, 390):
        driver = _browser(width)
        try:
            driver.get(page.as_uri())
            assert driver.execute_script("return document.scripts.length") == 0
            cells = {c.find_element(By.XPATH, "..").get_attribute("data-learner"): c
                     for c in driver.find_elements(By.CSS_SELECTOR, "#grid td.cell")}
            assert sorted(cells) == ["alice", "bob", "carol", "erin", "zoë"]
            for who, cell in cells.items():
                score = cell.find_element(By.CSS_SELECTOR, "a.score")
                assert score.text == f"{marks[who]['score']:g}/{rep['max_score']:g}"
                assert cell.get_attribute("data-late") == ("yes" if marks[who]["late"] else "no")
                href = unquote(score.get_attribute("href"))
                assert href == "file://" + str(lead.site / "feedback" / "month2" / f"{who}.html")
                assert Path(href.removeprefix("file://")).is_file()  # the link leads somewhere
            assert "adjusted" in cells["carol"].text and "late 2d" in cells["bob"].text
            section = driver.find_element(By.CSS_SELECTOR, "section.assignment")
            stat = {name: section.find_element(By.CSS_SELECTOR, f".stats .{name}").text
                    for name in ("submissions", "full-marks", "mean", "median", "max",
                                 "late-count")}
            assert stat == {"submissions": "5", "full-marks": str(rep["full_marks"]),
                            "mean": f"{rep['mean']:.2f}", "median": f"{rep['median']:g}",
                            "max": f"{rep['max_score']:g}", "late-count": "1"}
            bars = section.find_elements(By.CSS_SELECTOR, "svg.histogram rect.bar")
            assert [int(b.get_attribute("data-count")) for b in bars] == [
                h["count"] for h in rep["histogram"]]
            assert bars[-1].get_attribute("data-bin") == f"{rep['max_score']:g}"
            hardest = section.find_element(By.CSS_SELECTOR, "table.tests tbody tr")
            assert hardest.get_attribute("data-test") == rep["tests"][0]["test_id"]
            copies = [r.text for r in section.find_elements(By.CSS_SELECTOR, "table.copies tbody tr")]
            assert copies[0].startswith("alice · zoë 100%") and len(copies) == 3
            late = section.find_elements(By.CSS_SELECTOR, "table.late tbody tr")
            assert [r.get_attribute("data-learner") for r in late] == ["bob"]
            # the mistakes the group made: one row per (test, hint), names linking to feedback
            mistakes = section.find_elements(By.CSS_SELECTOR, "table.mistakes tbody tr")
            assert [(m.get_attribute("data-test"), int(m.get_attribute("data-count")))
                    for m in mistakes] == [(m["test_id"], len(m["learners"]))
                                           for m in rep["mistakes"]]
            assert rep["mistakes"] and all(m.is_displayed() for m in mistakes)
            first = mistakes[0].find_elements(By.CSS_SELECTOR, "td.who a")
            assert [a.text for a in first] == rep["mistakes"][0]["learners"]
            assert all(Path(unquote(a.get_attribute("href")).removeprefix("file://")).is_file()
                       for a in first)
            # readable at this width: nothing but the scrolling tables is wider than the screen
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"page is {overflow}px wider than a {width}px window"
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(height + 100, 6000))
            assert driver.save_screenshot(str(shots / f"dashboard-{width}.png"))
        finally:
            driver.quit()


@pytest.mark.kernel
def test_platform_formats_draw_a_seed_per_run_and_honour_a_pinned_one(tmp_path: Path) -> None:
    nb = tmp_path / "month2.ipynb"
    shutil.copyfile(STARTER, nb)
    seeds = []
    for _ in range(2):
        res = runner.invoke(app, ["check", "month2", str(nb), "-f", "gradescope", *ISO])
        doc = json.loads(res.stdout)
        assert "(drawn)" in doc["output"]
        seeds.append(int(doc["output"].split("seed ")[-1].split(" ")[0].rstrip(")")))
    assert seeds[0] != seeds[1] and DEFAULT_SEED not in seeds
    pinned = runner.invoke(app, ["check", "month2", str(nb), "-f", "gradescope", "--seed", "77",
                                 *ISO])
    assert "seed 77 (pinned)" in json.loads(pinned.stdout)["output"]
    plain = runner.invoke(app, ["check", "month2", str(nb), "-f", "json", *ISO])
    assert json.loads(plain.stdout)["seed"] == DEFAULT_SEED  # learners' own checks reproduce


@pytest.mark.kernel
def test_grade_honours_a_pinned_seed_and_keeps_no_secret(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "in"
    write(solution("month2"), folder / "alice.ipynb")
    db = tmp_path / "g.db"
    monkeypatch.setenv("MLGRADE_SEED", "4242")
    res = runner.invoke(app, ["grade", "month2", str(folder), "--gradebook", str(db), *ISO])
    assert res.exit_code == 0, res.stderr
    assert "seed: pinned" in res.stderr
    assert rows(db, "SELECT seed FROM submissions") == [(4242,)]
    assert rows(db, "SELECT COUNT(*) FROM assignment_seeds") == [(0,)]
