"""The capstone (a repository assignment) on the platforms, as tests/test_platforms.py does it for
the notebooks: the GitHub Classroom template repository and the command its workflow runs, the
Gradescope bundle's run_autograder on submitted repositories, and every report format of a
repository check. Each grading is real: the sandboxed kernel, the learner's pytest, training
script and uvicorn-served app."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml
from junitparser import JUnitXml
from tests.conftest import REPO, SOLUTIONS, assignment
from tests.test_platforms import _decode, _env, _run_autograder, _unpack_bundle
from typer.testing import CliRunner

from mlgrade.cli import app
from mlgrade.config import resolve_settings, with_seed_origin
from mlgrade.deliver import collect_grader_tests, deliver
from mlgrade.render import Format
from mlgrade.render.classroom import runners_for
from mlgrade.repo.mutants import load_repo_mutants, mutated_repository
from mlgrade.results import GradeResult

runner = CliRunner()
REFERENCE = SOLUTIONS / "capstone"
TOTAL = 16
TESTS = 13


def _template(tmp_path: Path, *extra: str) -> Path:
    template = tmp_path / "template"
    made = runner.invoke(app, ["classroom", "init", "capstone", str(template), *extra])
    assert made.exit_code == 0, made.stderr
    return template


def _steps(checkout: Path) -> list[dict[str, Any]]:
    wf = yaml.safe_load((checkout / ".github" / "workflows" / "classroom.yml").read_text(encoding="utf-8"))
    return wf["jobs"]["run-autograding-tests"]["steps"]  # type: ignore[no-any-return]


@pytest.mark.slow  # builds the wheel the template carries
def test_classroom_template_is_the_starter_repository_with_the_workflow_beside_its_ci(
        tmp_path: Path) -> None:
    """`classroom init capstone`: the starter repository as `mlgrade start` writes it (the
    learner's own ci.yml unchanged), classroom.yml beside it grading the checkout, the wheel,
    and a grading section after the README's own sections."""
    from mlgrade.own_wheel import wheel_name

    a = assignment("capstone")
    template = _template(tmp_path)
    started = tmp_path / "started"
    assert runner.invoke(app, ["start", "capstone", str(started)]).exit_code == 0
    starter = {p.relative_to(started).as_posix() for p in started.rglob("*") if p.is_file()}
    ours = {".github/workflows/classroom.yml", f".github/mlgrade/{wheel_name()}"}
    assert {p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file()} == starter | ours
    for rel in sorted(starter - {"README.md", ".gitignore"}):  # ci.yml, the code, the data
        assert (template / rel).read_bytes() == (started / rel).read_bytes(), rel
    own_readme = (started / "README.md").read_text(encoding="utf-8")
    readme = (template / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(own_readme.rstrip("\n") + "\n\n\n## Grading (GitHub Classroom)\n")
    section = readme[len(own_readme):]
    assert "mlgrade check capstone ." in section and "git push" in section
    assert f'pip install ".github/mlgrade/{wheel_name()}[serving]"' in section  # as notebooks
    assert "gh secret set MLGRADE_SEED --org" in section
    assert "a secret set on this template repository is not copied to them" in " ".join(section.split())
    # the README's graded sections are the starter's: no heading of the section shadows one
    headings = re.findall(r"^#+ (.+)$", section, flags=re.M)
    assert headings == ["Grading (GitHub Classroom)", "For the teacher"]
    assert (template / ".gitignore").read_text(encoding="utf-8") == (
        (started / ".gitignore").read_text(encoding="utf-8") + ".venv/\n")

    steps = _steps(template)
    install = next(s for s in steps if s["name"] == "Install mlgrade")["run"]
    assert f"python -m pip install '.github/mlgrade/{wheel_name()}[serving]'" in install
    grade = next(s for s in steps if s.get("id") == "grade")
    assert "mlgrade check capstone . --format classroom" in grade["run"]
    assert grade["env"] == {"MLGRADE_SEED": "${{ secrets.MLGRADE_SEED }}"}
    ids = steps[-1]["with"]["runners"].split(",")
    assert ids == [r.id for r in runners_for(collect_grader_tests(a))] and len(ids) == TESTS
    # `classroom workflow capstone` prints the same workflow; a notebook name does not apply
    printed = runner.invoke(app, ["classroom", "workflow", "capstone"])
    assert printed.exit_code == 0 and printed.stdout == (
        template / ".github" / "workflows" / "classroom.yml").read_text(encoding="utf-8")
    for argv in (["classroom", "workflow", "capstone", "--notebook", "x.ipynb"],
                 ["gradescope", "bundle", "capstone", "-o", str(tmp_path / "a.zip"),
                  "--install", "mlgrade", "--notebook", "x.ipynb"]):
        refused = runner.invoke(app, argv)
        assert refused.exit_code == 2 and "--notebook applies to notebook assignments" in refused.stderr
    again = runner.invoke(app, ["classroom", "init", "capstone", str(template)])
    assert again.exit_code == 2 and "not an empty folder" in again.stderr


def _grade_step(checkout: Path, tmp_path: Path) -> tuple[list[dict[str, Any]], str]:
    """Run the workflow's `run:` steps in the checkout as Actions would (`bash -e`, the step's
    env, an unset secret empty), the install step replaced by this venv's mlgrade on PATH:
    the reporter's documents in runner order, and the job summary."""
    steps = _steps(checkout)
    out, summary = tmp_path / "github_output", tmp_path / "summary.md"
    out.unlink(missing_ok=True)
    summary.unlink(missing_ok=True)
    for step in steps:
        if "run" not in step or step["name"] == "Install mlgrade":
            continue
        step_env = {k: re.sub(r"\$\{\{ secrets\.\w+ \}\}", "", str(v)) for k, v in step.get("env", {}).items()}
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=checkout, capture_output=True,
                              env={**_env(GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=str(summary)),
                                   **step_env}, text=True, timeout=600)
        assert done.returncode == 0, f"step {step['name']!r}: {done.stderr[-3000:]}"
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    reporter = steps[-1]
    docs = []
    for runner_id in reporter["with"]["runners"].split(","):
        expr = reporter["env"][f"{runner_id.upper()}_RESULTS"]
        name = re.fullmatch(r"\$\{\{ steps\.grade\.outputs\.(\w+) \}\}", expr).group(1)  # type: ignore[union-attr]
        docs.append(_decode(outputs[name]))
    assert len(docs) == len(outputs) == TESTS
    return docs, summary.read_text(encoding="utf-8")


@pytest.mark.kernel
@pytest.mark.slow
def test_classroom_template_completed_with_the_reference_earns_full_marks(tmp_path: Path) -> None:
    """The template as a learner completes it (the reference's files dropped in, the grader's
    workflow and wheel kept), graded by the workflow's own command: every runner passes."""
    checkout = tmp_path / "checkout"
    shutil.copytree(_template(tmp_path), checkout)
    shutil.copytree(REFERENCE, checkout, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert len(list((checkout / ".github" / "workflows").iterdir())) == 2  # ci.yml, classroom.yml
    docs, summary = _grade_step(checkout, tmp_path)
    assert [d["status"] for d in docs] == ["pass"] * TESTS, [d for d in docs if d["status"] != "pass"]
    assert sum(t["score"] for d in docs for t in d["tests"]) == TOTAL
    assert f"**Score: {TOTAL} / {TOTAL}**" in summary


@pytest.mark.kernel
@pytest.mark.slow
def test_classroom_template_untouched_earns_zero(tmp_path: Path) -> None:
    """The template pushed as it is: a graded zero (every runner fails, none errors), the grading
    section of the README and the grader's workflow earning nothing."""
    docs, summary = _grade_step(_template(tmp_path), tmp_path)
    assert [d["status"] for d in docs] == ["fail"] * TESTS
    assert sum(t["score"] for d in docs for t in d["tests"]) == 0
    assert sum(d["max_score"] for d in docs) == TOTAL and f"**Score: 0 / {TOTAL}**" in summary


def _bundle(tmp_path: Path) -> Path:
    """The capstone bundle unpacked as Gradescope does (a pinned --install: setup.sh is not run,
    run_autograder falls back to the mlgrade on PATH)."""
    root = _unpack_bundle(tmp_path, assignment_name="capstone")
    assert "learners submit their repository" in (root / "source" / "README.txt").read_text()
    return root


def _gradescope_spec(doc: dict[str, Any]) -> None:
    """What tests/render/test_platform_formats.py checks of every results.json."""
    assert isinstance(doc["execution_time"], int) and isinstance(doc["output"], str)
    assert doc["visibility"] in {"visible", "hidden", "after_due_date", "after_published"}
    for entry in doc["tests"]:
        assert set(entry) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert entry["status"] in ("passed", "failed")
    assert sum(e["score"] for e in doc["tests"]) == pytest.approx(doc["score"])


def test_gradescope_bundle_without_a_repository_says_what_to_submit(tmp_path: Path) -> None:
    doc = _run_autograder(_bundle(tmp_path))
    _gradescope_spec(doc)
    assert doc["score"] == 0 and doc["tests"] == [] and "No repository to grade" in doc["output"]


@pytest.mark.kernel
@pytest.mark.slow
def test_gradescope_bundle_grades_submitted_repositories(tmp_path: Path) -> None:
    """run_autograder on what Gradescope puts in submission/: a linked GitHub repository's files
    (the reference: full marks), an uploaded .zip of the repository's folder, unpacked with
    macOS's __MACOSX beside it (a mutant: loses exactly its test), and a .zip left as it is."""
    root = _bundle(tmp_path)
    submission = root / "submission"
    shutil.copytree(REFERENCE, submission, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    doc = _run_autograder(root)
    _gradescope_spec(doc)
    assert (doc["score"], doc["max_score"], len(doc["tests"])) == (TOTAL, TOTAL, TESTS), doc["output"]

    shutil.rmtree(submission)
    submission.mkdir()
    mutant = {m.name: m for m in load_repo_mutants(assignment("capstone").graders).mutants}["readme-inflates-auc"]
    mutated_repository(REFERENCE, mutant.edits, submission / "churn-api")
    (submission / "__MACOSX" / "churn-api").mkdir(parents=True)
    doc = _run_autograder(root)
    _gradescope_spec(doc)
    lost = [t for t in doc["tests"] if t["status"] == "failed"]
    titles = {t.id: t.title for t in collect_grader_tests(assignment("capstone"))}
    assert [t["name"] for t in lost] == [titles["test_readme_numbers_honest"]]
    assert doc["score"] == TOTAL - lost[0]["max_score"] and lost[0]["output"]

    archive = tmp_path / "capstone.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((submission / "churn-api").rglob("*")):
            if path.is_file():
                zf.write(path, f"churn-api/{path.relative_to(submission / 'churn-api').as_posix()}")
    shutil.rmtree(submission)
    submission.mkdir()
    shutil.copyfile(archive, submission / "capstone.zip")
    assert _run_autograder(root)["score"] == doc["score"]


# -- every report format of one repository check ----------------------------------------------
class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.xdist_group("capstone-reference")
def test_every_format_of_a_repository_check(capstone_reference: GradeResult, tmp_path: Path) -> None:
    """The reference repository's result (graded once per session) in each machine format,
    written as `mlgrade check capstone PATH -f FMT -o FILE` writes it and read back by the
    validators the notebook formats pass."""
    a = assignment("capstone")
    result = with_seed_origin(capstone_reference, resolve_settings({}, a.limits), "json")
    assert result.status == "graded" and result.score == result.max_score == TOTAL
    out: dict[Format, str] = {}
    for fmt in Format:
        if fmt.machine:
            dest = tmp_path / f"report.{fmt.value}"
            assert deliver(result, fmt, output=dest, env={}, assignment=a) is None
            out[fmt] = dest.read_text(encoding="utf-8")
    assert set(out) == {f for f in Format if f.machine}

    import jsonschema

    doc = json.loads(out[Format.JSON])
    jsonschema.validate(doc, json.loads((REPO / "docs" / "result-schema.json").read_text(encoding="utf-8")))
    assert doc["score"] == TOTAL and len(doc["tests"]) == TESTS
    assert f"**Score: {TOTAL} / {TOTAL}**" in out[Format.MARKDOWN]
    page = _Page()
    page.feed(out[Format.HTML])
    text = " ".join(" ".join(page.text).split())
    assert all(" ".join(t.title.split()) in text for t in result.tests)

    (tmp_path / "junit.xml").write_text(out[Format.JUNIT], encoding="utf-8")
    (suite,) = list(JUnitXml.fromfile(str(tmp_path / "junit.xml")))
    assert (suite.tests, suite.failures, suite.errors) == (TESTS, 0, 0)
    assert all(tc.is_passed for tc in suite)
    schema = xmlschema.XMLSchema(REPO / "tests" / "render" / "junit-10.xsd")
    assert [str(e.reason) for e in schema.iter_errors(out[Format.JUNIT_JENKINS].encode())] == []

    gradescope = json.loads(out[Format.GRADESCOPE])
    _gradescope_spec(gradescope)
    assert gradescope["score"] == TOTAL and len(gradescope["tests"]) == TESTS
    prairielearn = json.loads(out[Format.PRAIRIELEARN])
    assert prairielearn["gradable"] is True and prairielearn["score"] == 1.0
    assert [(t["points"], t["max_points"]) for t in prairielearn["tests"]] == [
        (t.earned, t.points) for t in result.tests]

    # classroom: one document per runner the generated workflow lists, each passing
    outputs = dict(line.split("=", 1) for line in out[Format.CLASSROOM].splitlines())
    expected = runners_for(collect_grader_tests(a))
    assert [n.removesuffix("_result") for n in outputs] == [r.id for r in expected]
    docs = [_decode(v) for v in outputs.values()]
    assert all(d["status"] == "pass" for d in docs)
    assert sum(t["score"] for d in docs for t in d["tests"]) == TOTAL
