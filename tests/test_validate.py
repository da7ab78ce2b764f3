"""`mlgrade validate`: end to end through the CLI on real assignment folders and real kernels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgrade.assignments import load_assignment
from mlgrade.cli import app
from mlgrade.validate import collect_graders, static_checks

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "assignments"
runner = CliRunner()


def _validate(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [*args])
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, report, result.stderr


def _failed(report: dict) -> set[str]:
    return {c["name"] for c in report["checks"] if not c["ok"]}


@pytest.mark.kernel
def test_validate_month2_pilot() -> None:
    # reference solutions are not installed with mlgrade: name the checkout's
    code, report, err = _validate("validate", "month2", "--json", "--solution",
                                  str(REPO / "solutions" / "month2.ipynb"))
    assert code == 0, err
    assert report is not None and report["ok"] is True
    assert [r["label"] for r in report["runs"]] == ["solution", "solution (again)", "starter"]
    assert {c["name"] for c in report["checks"]} == {
        "graders load", "every test has a title", "every test has @points and a question",
        "points add up per question", "starter notebook exists", "solution earns full marks",
        "grading is deterministic", "starter earns zero", "every failure has a feedback message",
    }
    assert "month2: valid (9 checks)" in err


@pytest.mark.kernel
def test_validate_lead_example_with_assignments_option() -> None:
    """The worked example of docs/custom-assignments.md, exactly as documented."""
    code, report, err = _validate("--assignments", str(EXAMPLES), "validate", "column_mean",
                                  "--json")
    assert code == 0, err
    assert report is not None and report["ok"] and report["assignment"] == "column_mean"
    assert [(r["score"], r["max_score"]) for r in report["runs"]] == [(3, 3), (3, 3), (0, 3)]
    assert "timings:" in err


@pytest.mark.kernel
def test_validate_path_and_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    code, report, err = _validate("validate", "--path", str(EXAMPLES / "column_mean"),
                                  "--no-determinism", "--json")
    assert code == 0, err
    assert report is not None and [r["label"] for r in report["runs"]] == ["solution", "starter"]
    monkeypatch.setenv("MLGRADE_ASSIGNMENTS", str(EXAMPLES))
    code, report, err = _validate("validate", "column_mean", "--no-determinism")
    assert code == 0, err
    assert "column_mean: valid (8 checks)" in err


FLAKY_GRADER = '''
from pathlib import Path
from mlgrade.grading import expect, points

@points(1, question="q2")
def test_flips(nb):
    """passes on the first run only (a stand-in for an unseeded grader)"""
    state = Path(__file__).with_name("runs.txt")
    runs = int(state.read_text()) if state.exists() else 0
    state.write_text(str(runs + 1))
    expect(runs == 0, "flipped")

def test_untitled_and_unscored(nb):
    assert nb.has("column_mean"), "column_mean is missing"
'''


@pytest.mark.kernel
def test_validate_broken_assignment_reports_each_problem(tmp_path: Path) -> None:
    folder = tmp_path / "lead" / "broken"
    shutil.copytree(EXAMPLES / "column_mean", folder)
    # the solution and the starter swapped: the "solution" earns nothing, the "starter" passes
    (folder / "solution.ipynb").rename(folder / "done.ipynb")
    (folder / "column_mean.ipynb").rename(folder / "solution.ipynb")
    (folder / "done.ipynb").rename(folder / "column_mean.ipynb")
    toml = (folder / "assignment.toml").read_text().replace("points = 2", "points = 3")
    (folder / "assignment.toml").write_text(toml)
    (folder / "graders" / "test_extra.py").write_text(FLAKY_GRADER)

    code, report, err = _validate("--assignments", str(tmp_path / "lead"), "validate", "broken",
                                  "--json")
    assert code == 1, err
    assert report is not None and report["ok"] is False
    assert _failed(report) == {
        "every test has a title", "every test has @points and a question",
        "points add up per question", "solution earns full marks", "grading is deterministic",
        "starter earns zero",
    }
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert "test_untitled_and_unscored" in details["every test has a title"]
    assert details["points add up per question"].startswith(
        "q1: assignment.toml says 3, graders give 2; q2: assignment.toml says 1, graders give 2")
    assert "test_flips" in details["grading is deterministic"]
    assert "not implemented yet" in details["solution earns full marks"]
    assert "broken: 6 of 9 checks failed" in err


def test_collect_graders_needs_no_kernel(tmp_path: Path) -> None:
    tests, errors = collect_graders(EXAMPLES / "column_mean" / "graders")
    assert errors == ()
    assert [(t.id, t.points, t.question, t.has_docstring) for t in tests] == [
        ("test_column_mean_random_frames", 1.0, "q1", True),
        ("test_column_mean_skips_missing", 1.0, "q1", True),
        ("test_average_price", 1.0, "q2", True),
    ]
    graders = tmp_path / "graders"
    graders.mkdir()
    (graders / "test_bad.py").write_text("import not_a_module_anywhere\n")
    tests, errors = collect_graders(graders)
    assert tests == () and len(errors) == 1
    a = load_assignment(EXAMPLES / "column_mean")
    checks = static_checks(a, tests, errors)
    assert [c.name for c in checks] == ["graders load"] and not checks[0].ok


@pytest.mark.parametrize(("args", "message"), [
    ([], "give an assignment name or --path DIR"),
    (["month2", "--path", str(EXAMPLES / "column_mean")], "give an assignment name or --path"),
    (["no_such_assignment"], "unknown assignment 'no_such_assignment'"),
    (["--path", str(EXAMPLES)], "has no assignment.toml"),
])
def test_validate_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_validate_has_help() -> None:
    result = runner.invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--path" in text and "--json" in text and "the starter earns zero" in text
