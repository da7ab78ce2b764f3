"""The capstone's graders are tested like the months': the reference repository earns full
marks (handed in as a GitHub-style .zip), the starter written by `mlgrade start` earns zero
through `mlgrade check` (a git checkout), and each mutant of graders/capstone/mutants.toml (a
realistic wrong repository, including ones that fake their test results or their README
numbers) loses exactly the points of the tests it lists, each alternative none. Every grading
is real: the sandboxed kernel, the learner's pytest, training script and uvicorn-served app."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from _pytest.mark import ParameterSet
from tests.batch.helpers import MistakeRows, scores
from tests.conftest import SOLUTIONS, assignment
from tests.graders.mutation import assert_verdict
from typer.testing import CliRunner

from mlgrade.cli import app
from mlgrade.config import resolve_settings
from mlgrade.repo.check import NOT_BUILT, check_repository
from mlgrade.repo.mutants import RepoAlternative, RepoMutant, load_repo_mutants, mutated_repository
from mlgrade.results import GradeResult

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

# the reference repository is not installed with mlgrade: use the checkout's
REFERENCE = SOLUTIONS / "capstone"
ALL_TESTS = {
    "test_own_tests_pass", "test_training_writes_versioned_artifact", "test_mlflow_run_logged",
    "test_health_reports_version", "test_predictions_meet_bar", "test_invalid_input_422",
    "test_no_model_503", "test_readme_sections", "test_readme_numbers_honest",
    "test_readme_bias_evaluation", "test_dockerfile", "test_dockerignore", "test_ci_workflow",
}
TOTAL = 16


def _grade(path: Path) -> GradeResult:
    a = assignment("capstone")
    return check_repository(path, a, resolve_settings({}, a.limits)).result


def _cases() -> list[ParameterSet]:
    cases = load_repo_mutants(assignment("capstone").graders)
    params = [pytest.param(m, id=f"mutant-{m.name}", marks=pytest.mark.mutation) for m in cases.mutants]
    params += [pytest.param(a, id=f"alternative-{a.name}", marks=pytest.mark.mutation)
               for a in cases.alternatives]
    return params


def test_reference_zip_full_marks(tmp_path: Path) -> None:
    reference = REFERENCE
    assert reference.is_dir()
    archive = tmp_path / "churn-api-main.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # GitHub's "Download ZIP": one top folder
        for path in sorted(reference.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"churn-api-main/{path.relative_to(reference).as_posix()}")
    before = archive.read_bytes()
    result = _grade(archive)
    assert result.status == "graded", result.reason
    assert {t.id for t in result.tests} == ALL_TESTS
    assert [(t.id, t.feedback) for t in result.tests if t.status != "passed"] == []
    assert result.score == result.max_score == TOTAL
    assert NOT_BUILT in result.notices
    assert archive.read_bytes() == before


def test_started_starter_checks_to_zero(tmp_path: Path) -> None:
    """`mlgrade start capstone DIR`, `git init`, then `mlgrade check capstone DIR`: exit 1,
    score 0 in the JSON report, nothing written into the repository."""
    runner = CliRunner()
    repo = tmp_path / "my-capstone"
    started = runner.invoke(app, ["start", "capstone", str(repo)])
    assert started.exit_code == 0, started.stderr
    assert (repo / "Dockerfile").is_file() and (repo / ".github/workflows/ci.yml").is_file()
    git = ["git", "-C", str(repo), "-c", "user.name=l", "-c", "user.email=l@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "starter"], check=True)
    listing = sorted(str(p.relative_to(repo)) for p in repo.rglob("*"))
    checked = runner.invoke(app, ["check", "capstone", str(repo), "--format", "json"])
    assert checked.exit_code == 1, checked.stderr
    doc = json.loads(checked.stdout)
    assert doc["status"] == "graded" and doc["score"] == 0 and doc["max_score"] == TOTAL
    assert {t["id"] for t in doc["tests"]} == ALL_TESTS
    assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*")) == listing


@pytest.mark.parametrize("case", _cases())
def test_mutants_and_alternatives(tmp_path: Path, case: RepoMutant | RepoAlternative) -> None:
    reference = REFERENCE
    repo = mutated_repository(reference, case.edits, tmp_path / "repo")
    result = _grade(repo)
    if isinstance(case, RepoAlternative):
        assert_verdict(result, case.name)
    else:
        assert_verdict(result, case.name, case.fails, case.feedback)
    assert {t.id for t in result.tests} == ALL_TESTS and result.max_score == TOTAL


@pytest.mark.mutation  # five gradings of about a minute each: CI's second tier
def test_grade_a_folder_of_repositories_into_the_gradebook(tmp_path: Path) -> None:
    """`mlgrade grade capstone DIR`: five learners (folders, a .zip, a `capstone-` prefix, a
    git checkout), each graded in the sandbox into the gradebook; `report --html` draws the
    dashboard from it."""
    a = assignment("capstone")
    reference = REFERENCE
    cases = {m.name: m for m in load_repo_mutants(a.graders).mutants}
    folder = tmp_path / "submissions"
    folder.mkdir()
    mutated_repository(reference, (), folder / "alice")
    with zipfile.ZipFile(folder / "bob.zip", "w") as zf:
        for path in sorted(reference.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"bob-capstone/{path.relative_to(reference).as_posix()}")
    mutated_repository(a.starter, (), folder / "carol")
    mutated_repository(reference, cases["readme-inflates-auc"].edits, folder / "capstone-dave")
    erin = mutated_repository(reference, cases["conftest-fakes-results"].edits, folder / "erin")
    git = ["git", "-C", str(erin), "-c", "user.name=e", "-c", "user.email=e@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "capstone"], check=True)
    (folder / "notes.txt").write_text("not a repository")
    db = tmp_path / "gradebook.sqlite"
    runner = CliRunner()
    graded = runner.invoke(app, ["grade", "capstone", str(folder), "--gradebook", str(db),
                                 "--workers", "1"])
    assert graded.exit_code == 0, graded.stderr
    assert "skipped notes.txt: not a repository" in graded.stderr
    assert scores(db) == {"alice": (16.0, "graded"), "bob": (16.0, "graded"),
                          "carol": (0.0, "graded"), "dave": (15.0, "graded"),
                          "erin": (14.0, "graded")}
    page = tmp_path / "site" / "dashboard.html"
    report = runner.invoke(app, ["report", "capstone", "--gradebook", str(db), "--html", str(page)])
    assert report.exit_code == 0, report.stderr
    html = page.read_text(encoding="utf-8")
    assert "test_readme_numbers_honest" in html or "held-out ROC-AUC the README claims" in html
    # the mistakes table links each repository's mistake to its learner's feedback page, which
    # the same command wrote beside the dashboard
    rows = MistakeRows()
    rows.feed(html)
    links = {test: set(hrefs) for test, _count, hrefs in rows.rows if hrefs}
    assert "feedback/capstone/dave.html" in links["test_readme_numbers_honest"]
    assert "feedback/capstone/erin.html" in links["test_own_tests_pass"]
    for learner in ("alice", "bob", "carol", "dave", "erin"):
        feedback = (page.parent / "feedback" / "capstone" / f"{learner}.html").read_text(encoding="utf-8")
        assert learner in feedback
    listed = runner.invoke(app, ["report", "capstone", "--gradebook", str(db), "-f", "json"])
    assert listed.exit_code == 0, listed.stderr
    (rep,) = json.loads(listed.stdout)
    mistakes = {(m["test_id"], learner) for m in rep["mistakes"] for learner in m["learners"]}
    assert {("test_readme_numbers_honest", "dave"), ("test_own_tests_pass", "erin")} <= mistakes
    assert not {learner for _, learner in mistakes} & {"alice", "bob"}


@pytest.mark.mutation  # three gradings: CI's second tier
def test_validate_capstone() -> None:
    """`mlgrade validate capstone`: the reference twice with the same scores, the starter
    repository zero, instructions and file-edit mutants mapped to real tests."""
    result = CliRunner().invoke(app, ["validate", "capstone", "--solution", str(REFERENCE), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    checks = {c["name"]: c["ok"] for c in doc["checks"]}
    assert all(checks.values()), checks
    assert {"solution earns full marks", "grading is deterministic", "starter earns zero",
            "starter repository exists", "mutants name real tests",
            "every graded instruction has a mutant that violates it"} <= set(checks)
    assert "starter notebook exists" not in checks
