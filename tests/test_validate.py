"""`mlgrade validate`: end to end through the CLI on real assignment folders and real kernels."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgrade.assignments import load_assignment
from mlgrade.cli import app
from mlgrade.errors import AssignmentInvalidError
from mlgrade.grading.lint import lint_graders
from mlgrade.mutants import load_mutants
from mlgrade.validate import Check, collect_graders, fairness_checks, static_checks

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
    names = {c["name"] for c in report["checks"]}
    assert names - {"the starter marks advice as not graded"} == {
        "graders load", "every test has a title", "every test has @points and a question",
        "points add up per question", "starter notebook exists", "solution earns full marks",
        "grading is deterministic", "starter earns zero", "every failure has a feedback message",
        "every instruction has a test", "every test observes an instruction",
        "every graded instruction has a mutant that violates it",
        "every boundary has a boundary mutant", "expected values do not come from learner calls",
    }
    assert f"month2: valid ({len(names)} checks)" in err


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
    assert "column_mean: valid (13 checks)" in err


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
        "starter earns zero", "every test observes an instruction",
    }
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert "test_untitled_and_unscored" in details["every test has a title"]
    assert details["points add up per question"].startswith(
        "q1: assignment.toml says 3, graders give 2; q2: assignment.toml says 1, graders give 2")
    assert "test_flips" in details["grading is deterministic"]
    assert "not implemented yet" in details["solution earns full marks"]
    assert details["every test observes an instruction"].startswith(
        "test_flips, test_untitled_and_unscored map to no instruction")
    assert "broken: 7 of 14 checks failed" in err


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


# -- fairness checks: instruction mapping, boundaries, the lint, mutants ------------------------
def _example_copy(tmp_path: Path, name: str = "fair") -> Path:
    folder = tmp_path / "lead" / name
    shutil.copytree(EXAMPLES / "column_mean", folder)
    return folder


def _fairness(folder: Path) -> dict[str, Check]:
    a = load_assignment(folder)
    tests, errors = collect_graders(a.graders)
    assert errors == ()
    return {c.name: c for c in fairness_checks(a, tests)}


def test_fairness_checks_pass_on_the_example() -> None:
    checks = _fairness(EXAMPLES / "column_mean")
    assert {n: c.ok for n, c in checks.items()} == {
        "every instruction has a test": True, "every test observes an instruction": True,
        "every graded instruction has a mutant that violates it": True,
        "the starter marks advice as not graded": True,
        "expected values do not come from learner calls": True}
    assert checks["every instruction has a test"].detail == (
        "3 instructions, each observed by a test, and 1 advice")


def test_instructions_without_tests_and_tests_without_instructions(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path)
    toml = (folder / "assignment.toml").read_text()
    toml = toml.replace('tests = ["test_average_price"]', "tests = []")
    toml = toml.replace('tests = ["test_column_mean_skips_missing"]',
                        'tests = ["test_column_mean_skips_missing", "test_no_such_test"]')
    (folder / "assignment.toml").write_text(toml)
    checks = _fairness(folder)
    mapping, orphans = checks["every instruction has a test"], checks["every test observes an instruction"]
    assert not mapping.ok and not orphans.ok
    assert "instruction 3 (q2: \"average_price: the mean of data/prices.csv's price\") has no test" \
        in mapping.detail
    assert "names tests that do not exist: test_no_such_test" in mapping.detail
    assert orphans.detail.startswith("test_average_price map to no instruction")


def test_no_instructions_declared_is_reported(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path)
    toml = (folder / "assignment.toml").read_text()
    (folder / "assignment.toml").write_text(toml[:toml.index("# Each instruction")])
    check = _fairness(folder)["every instruction has a test"]
    assert not check.ok and "declares no [[instructions]]" in check.detail


def test_boundary_needs_a_boundary_mutant_that_its_tests_catch(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path)
    toml = (folder / "assignment.toml").read_text().replace(
        'tests = ["test_column_mean_skips_missing"]',
        'tests = ["test_column_mean_skips_missing"]\nboundary = "a column that is all NaN but one"')
    (folder / "assignment.toml").write_text(toml)
    mutants = folder / "graders" / "mutants.toml"
    mutants.unlink()
    assert not _fairness(folder)["every boundary has a boundary mutant"].ok  # no mutants.toml
    mutants.write_text(MUTANTS.replace('kind = "boundary"', 'kind = "other"'))
    check = _fairness(folder)["every boundary has a boundary mutant"]
    assert not check.ok and "'a column that is all NaN but one'" in check.detail
    mutants.write_text(MUTANTS)
    assert _fairness(folder)["every boundary has a boundary mutant"].ok


def test_each_graded_instruction_needs_a_mutant_that_violates_it_alone(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path)
    mutants = folder / "graders" / "mutants.toml"
    text = mutants.read_text()
    name = "every graded instruction has a mutant that violates it"
    mutants.write_text(text.replace('violates = ["q2-price"]\n', ""))
    check = _fairness(folder)[name]
    assert not check.ok and 'q2-price: no mutant has `violates = ["q2-price"]`' in check.detail
    # a mutant that loses points beyond the instruction's tests does not count
    mutants.write_text(text.replace('fails = ["test_column_mean_skips_missing"]\n',
                                    'fails = ["test_column_mean_skips_missing", '
                                    '"test_average_price"]\n', 1))
    check = _fairness(folder)[name]
    assert not check.ok and "q1-skip-nan: its mutants (nan-as-zero) also fail tests outside" \
        in check.detail
    mutants.write_text(text.replace('violates = ["q2-price"]', 'violates = ["q2-prize"]'))
    assert "mutant first-rows-only violates unknown instructions q2-prize" in _fairness(folder)[name].detail
    toml = folder / "assignment.toml"
    toml.write_text(toml.read_text().replace('id = "q2-price"\n', ""))
    mutants.write_text(text)
    check = _fairness(folder)[name]
    assert not check.ok and "instructions 3 have no `id`" in check.detail


def test_advice_has_no_tests_and_the_starter_says_it_is_not_graded(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path)
    starter = folder / "column_mean.ipynb"
    starter.write_text(starter.read_text().replace("Advice (not graded)", "Advice"))
    check = _fairness(folder)["the starter marks advice as not graded"]
    assert not check.ok and "in the section of q2-reuse" in check.detail
    toml = folder / "assignment.toml"
    toml.write_text(toml.read_text().replace("advice = true", 'advice = true\ntests = ["test_average_price"]'))
    loads = _fairness(folder)["fairness metadata loads"]
    assert not loads.ok and "instruction 4 is advice (not graded), so it has no `tests`" in loads.detail


LEARNER_EXPECTED = '''
import math

import numpy as np
import pytest
from mlgrade.grading import expect, expect_close, points
from mlgrade.grading.estimators import spec_of_call, started


def _frame(rng):
    return np.arange(5.0), rng.normal(size=5)


def _fetch(nb, rng):
    x, noise = _frame(rng)
    return x, nb.call("column_mean", x)


def _check(got, want):
    expect_close(got, want, "wrong")


@points(1, question="q1")
def test_column_mean_random_frames(nb, rng):
    """flagged: the expected value is another learner function's answer"""
    x, got = _fetch(nb, rng)
    expect_close(got, float(x.mean()), "fine: x is the grader's")
    twice = nb.call("double", x)
    expect_close(got * 2, np.asarray(twice).mean(), "flagged")
    _check(got, nb.get("reference"))
    expect(got == nb.call("column_median", x), "flagged as well")


@points(1, question="q1")
def test_column_mean_skips_missing(nb, rng):
    """one function compared with itself (determinism) is fine; a pragma excuses the rest"""
    a = nb.call("column_mean", np.ones(3))
    expect(a == nb.call("column_mean", np.ones(3)), "fine: deterministic")
    expect(a == 1.0, "fine")
    rows = nb.call("column_mean", np.ones(3))
    expect(len(set(rows)) == len(rows), "fine: one answer checked for consistency")
    expect(a == nb.get("mean_of_ones"), "marked")  # mlgrade: learner-expected-ok (a lead's own)


@pytest.fixture
def learner_spec(nb):
    return spec_of_call(nb, "build_model", what="build_model()")


@points(1, question="q2")
def test_average_price(nb, learner_spec):
    """tolerances count like ==; fixtures and helpers handed nb carry learner data"""
    got = nb.get("average_price")
    expect_close(got, 2.0, "fine")
    expect(abs(got - nb.get("other_price")) < 1e-6, "flagged: a tolerance between two answers")
    expect(np.isclose(got, learner_spec.alpha), "flagged: the learner's settings")
    assert math.isclose(nb.call("price_of", 1), nb.call("price_of", 1)), "fine: one function"
    expect(got <= learner_spec.alpha, "flagged: an ordering between two answers")
    expect_close(got, started(lambda: refit(learner_spec)).result(), "flagged: via a lambda")


@points(1, question="q2")
def test_average_price(nb):
    """fine"""
    expect_close(nb.get("average_price"), 2.0, "fine")
'''


def test_lint_flags_expected_values_from_learner_calls(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path)
    for old in (folder / "graders").glob("test_*.py"):
        old.unlink()
    (folder / "graders" / "test_lint.py").write_text(LEARNER_EXPECTED)
    findings = lint_graders(folder / "graders")
    assert [(f.line, f.function) for f in findings] == [
        (20, "_check"), (29, "test_column_mean_random_frames"),
        (31, "test_column_mean_random_frames"), (55, "test_average_price"),
        (56, "test_average_price"), (58, "test_average_price"), (59, "test_average_price")]
    assert "expected value of expect_close() comes from a learner call" in findings[0].message
    assert "both sides of a comparison come from learner calls" in findings[2].message
    assert "a tolerance compares two learner values" in findings[3].message
    assert "both arguments of isclose() come from learner calls" in findings[4].message
    # mlgrade's own graders allow no pragma: the marked line is a finding too
    strict = lint_graders(folder / "graders", pragmas=False)
    assert [f.line for f in strict] == [20, 29, 31, 42, 55, 56, 58, 59]
    check = _fairness(folder)["expected values do not come from learner calls"]
    assert not check.ok and "test_lint.py:20 (_check)" in check.detail


MUTANTS = '''
[[mutant]]
name = "nan-as-zero"
kind = "boundary"
cell = "def column_mean"
source = """
def column_mean(df, column):
    return float(df[column].fillna(0).mean())
"""
fails = ["test_column_mean_skips_missing", "test_average_price"]  # prices.csv has gaps too
feedback = { test_column_mean_skips_missing = "skip NaN" }

[[mutant]]
name = "median"
kind = "other"
cell = "def column_mean"
source = """
def column_mean(df, column):
    return float(df[column].median())
"""
fails = ["test_column_mean_random_frames", "test_column_mean_skips_missing", "test_average_price"]

[[alternative]]
name = "numpy"
cells = [{ cell = "def column_mean", source = """
import numpy as np
def column_mean(df, column):
    return float(np.nanmean(df[column].to_numpy(dtype=float)))
""" }]
'''


def test_load_mutants_formats_and_errors(tmp_path: Path) -> None:
    (tmp_path / "mutants.toml").write_text(MUTANTS)
    cases = load_mutants(tmp_path)
    assert [(m.name, m.kind, sorted(m.fails)) for m in cases.mutants] == [
        ("nan-as-zero", "boundary", ["test_average_price", "test_column_mean_skips_missing"]),
        ("median", "other", ["test_average_price", "test_column_mean_random_frames",
                             "test_column_mean_skips_missing"])]
    assert cases.mutants[0].feedback == (("test_column_mean_skips_missing", "skip NaN"),)
    assert [(a.name, [r.cell for r in a.replacements]) for a in cases.alternatives] == [
        ("numpy", ["def column_mean"])]
    for bad, message in [
        (MUTANTS.replace('kind = "other"', 'kind = "sneaky"'), "kind 'sneaky' is not one of"),
        (MUTANTS.replace('fails = ["test_column_mean_random_frames", "test_column_mean_skips_missing", '
                         '"test_average_price"]', "fails = []"), "`fails` is empty"),
        (MUTANTS.replace('name = "median"', 'name = "nan-as-zero"'), "is used twice"),
        ("[[mutant]]\nname = 'x'\nkind = 'other'\nfails = ['t']\n", "non-empty string `cell`"),
        ("[[mutants]]\n", "unknown tables ['mutants']"),
        ("[[mutant]\n", "cannot be read"),
    ]:
        (tmp_path / "mutants.toml").write_text(bad)
        with pytest.raises(AssignmentInvalidError, match=re.escape(message)):
            load_mutants(tmp_path)
    assert load_mutants(tmp_path / "nowhere").mutants == ()


@pytest.mark.kernel
def test_validate_mutants_reports_wrong_failing_sets_and_uncaught_tests(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path, "mutated")
    first_mutant = MUTANTS[:MUTANTS.index('[[mutant]]\nname = "median"')]
    alternative = MUTANTS[MUTANTS.index("[[alternative]]"):]
    (folder / "graders" / "mutants.toml").write_text(
        first_mutant.replace('fails = ["test_column_mean_skips_missing", "test_average_price"]',
                             'fails = ["test_column_mean_skips_missing"]')
        + alternative.replace("np.nanmean(", "np.nanmedian("))
    code, report, err = _validate("--assignments", str(tmp_path / "lead"), "validate", "mutated",
                                  "--no-determinism", "--mutants", "--json")
    assert code == 1, err
    assert report is not None
    details = {c["name"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert set(details) == {"every mutant fails exactly its tests", "every test fails for some mutant",
                            "every alternative earns full marks",
                            "every graded instruction has a mutant that violates it"}
    assert details["every mutant fails exactly its tests"].startswith(
        "nan-as-zero: also fails test_average_price.")
    assert details["every test fails for some mutant"].startswith(
        "no mutant fails test_column_mean_random_frames:")
    assert details["every alternative earns full marks"].startswith("numpy (")
    # exact failing sets, each instruction violated alone, a correct alternative: valid
    shutil.copyfile(EXAMPLES / "column_mean" / "graders" / "mutants.toml",
                    folder / "graders" / "mutants.toml")
    code, report, err = _validate("--assignments", str(tmp_path / "lead"), "validate", "mutated",
                                  "--no-determinism", "--mutants")
    assert code == 0, err
    assert "mutated: valid (16 checks)" in err
