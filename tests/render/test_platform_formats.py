"""Each platform format checked against how its consumer reads it (no kernel)."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml
from tests.render.canned import (
    ALL_ERRORED,
    CASES,
    COULD_NOT_RUN,
    LONG_MESSAGE,
    NON_ASCII,
    TYPICAL,
    ZERO_POINTS,
)

from mlgrade.deliver import deliver
from mlgrade.render import Format, classroom, gradescope, junit, markdown, prairielearn
from mlgrade.render.classroom import GraderTest, runners_for
from mlgrade.render.common import TRUNCATION_MARKER
from mlgrade.results import TestResult as Result
from mlgrade.results import TestStatus as Status


# -- JUnit ---------------------------------------------------------------------------------
def _junit(result: object, tmp_path: Path) -> JUnitXml:
    path = tmp_path / "report.xml"
    path.write_text(junit.render(result), encoding="utf-8")  # type: ignore[arg-type]
    return JUnitXml.fromfile(str(path))


@pytest.mark.parametrize("case", sorted(CASES))
def test_junit_reads_back_with_counts_and_required_attributes(case: str, tmp_path: Path) -> None:
    result = CASES[case]
    xml = _junit(result, tmp_path)
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name and suite.time is not None
    cases = list(suite)
    failed = [t for t in result.tests if t.status is Status.FAILED]
    errored = [t for t in result.tests if t.status is Status.ERROR]
    extra = 1 if not result.tests else 0  # the could-not-run case is one errored testcase
    assert suite.tests == len(result.tests) + extra == len(cases)
    assert suite.failures == len(failed)
    assert suite.errors == len(errored) + extra
    assert xml.tests == suite.tests and xml.failures == suite.failures
    for tc in cases:
        assert tc.name and tc.classname.startswith("mlgrade.") and tc.time is not None
    by_name = {tc.name: tc for tc in cases}
    for t in result.tests:
        tc = next(c for name, c in by_name.items() if name.endswith(f"[{t.id}]"))
        # testcase-level properties (as pytest's record_property writes them)
        props = {p.get("name"): p.get("value") for p in tc._elem.iterfind("properties/property")}
        assert float(props["points"]) == t.points and float(props["earned"]) == t.earned
        if t.status is Status.PASSED:
            assert tc.is_passed
        else:
            (outcome,) = tc.result
            assert isinstance(outcome, Failure if t.status is Status.FAILED else Error)
            if len(t.feedback) < 1000:
                assert outcome.message == t.feedback
    suite_props = {p.name: p.value for p in suite.properties()}
    assert float(suite_props["score"]) == result.score
    assert float(suite_props["max_score"]) == result.max_score


def test_junit_could_not_run_says_why(tmp_path: Path) -> None:
    (tc,) = list(list(_junit(COULD_NOT_RUN, tmp_path))[0])
    (outcome,) = tc.result
    assert isinstance(outcome, Error) and "kernel died" in outcome.message


def test_junit_long_message_is_truncated_and_valid_xml() -> None:
    text = junit.render(LONG_MESSAGE)
    root = ET.fromstring(text.encode("utf-8"))
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message", "").endswith(TRUNCATION_MARKER)
    assert len(failure.get("message", "")) <= junit.MESSAGE_LIMIT
    assert "\x00" not in text and "\x1b" not in text


# -- Gradescope ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_gradescope_results_follow_the_spec(case: str) -> None:
    result = CASES[case]
    doc = json.loads(gradescope.render(result))
    assert doc["score"] == pytest.approx(result.score)
    assert isinstance(doc["execution_time"], int) and isinstance(doc["output"], str)
    assert doc["visibility"] in {"visible", "hidden", "after_due_date", "after_published"}
    assert len(doc["tests"]) == len(result.tests)
    for entry, t in zip(doc["tests"], result.tests, strict=True):
        assert set(entry) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert entry["status"] == ("passed" if t.status is Status.PASSED else "failed")
        assert entry["score"] == t.earned and entry["max_score"] == t.points
    assert sum(e["score"] for e in doc["tests"]) == pytest.approx(doc["score"])


def test_gradescope_numbers_count_within_each_question() -> None:
    doc = json.loads(gradescope.render(TYPICAL))
    assert [t["number"] for t in doc["tests"]] == ["q1.1", "q2.1", "q2.2", "q3.1", "q7.1"]
    loose = dataclasses.replace(TYPICAL, tests=tuple(
        dataclasses.replace(t, question=None if t.question in ("q1", "q3") else t.question)
        for t in TYPICAL.tests))
    doc = json.loads(gradescope.render(loose))
    assert [t["number"] for t in doc["tests"]] == ["1", "q2.1", "q2.2", "2", "q7.1"]


def test_gradescope_could_not_run_and_errors() -> None:
    doc = json.loads(gradescope.render(COULD_NOT_RUN))
    assert doc["score"] == 0 and doc["tests"] == [] and "could not be graded" in doc["output"]
    doc = json.loads(gradescope.render(ALL_ERRORED))
    assert all(t["status"] == "failed" and "grader" in t["output"] for t in doc["tests"])
    long = json.loads(gradescope.render(LONG_MESSAGE))
    assert long["tests"][0]["output"].endswith(TRUNCATION_MARKER)


# -- PrairieLearn --------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_prairielearn_results(case: str) -> None:
    result = CASES[case]
    doc = json.loads(prairielearn.render(result))
    assert 0.0 <= doc["score"] <= 1.0 and isinstance(doc["gradable"], bool)
    assert [(t["points"], t["max_points"]) for t in doc["tests"]] == [
        (t.earned, t.points) for t in result.tests]
    if result.max_score:
        assert doc["score"] == pytest.approx(result.score / result.max_score)


def test_prairielearn_edges() -> None:
    assert json.loads(prairielearn.render(COULD_NOT_RUN))["gradable"] is False
    assert json.loads(prairielearn.render(ALL_ERRORED))["gradable"] is True
    zero = json.loads(prairielearn.render(ZERO_POINTS))
    assert zero["score"] == 0.0  # one zero-point test failed: not full marks
    passed = dataclasses.replace(ZERO_POINTS, tests=ZERO_POINTS.tests[:1])
    assert json.loads(prairielearn.render(passed))["score"] == 1.0


def test_prairielearn_stays_under_one_megabyte_with_thousands_of_tests() -> None:
    (long_test,) = [t for t in LONG_MESSAGE.tests if t.status is Status.FAILED]
    many = tuple(dataclasses.replace(long_test, id=f"test_{i}") for i in range(400))
    text = prairielearn.render(dataclasses.replace(LONG_MESSAGE, tests=many))
    assert len(text.encode("utf-8")) < prairielearn.SIZE_LIMIT
    assert len(json.loads(text)["tests"]) == 400


# -- GitHub Classroom ----------------------------------------------------------------------
def _decode(value: str) -> dict[str, object]:
    return json.loads(base64.b64decode(value, validate=True).decode("utf-8"))  # type: ignore[no-any-return]


def _reporter_view(outputs: dict[str, str]) -> tuple[float, float, list[float], str | None]:
    """What the reporter computes: (points sent to Classroom, max, summary scores, failure)."""
    total = maximum = 0.0
    summary = []
    failure = None
    for doc in map(_decode, outputs.values()):
        tests = doc["tests"]
        assert isinstance(tests, list) and tests, "the reporter crashes on an empty tests array"
        passed = sum(t["status"] == "pass" for t in tests)
        summary.append(passed / len(tests) * (doc["max_score"] or 1))  # type: ignore[operator]
        if doc["max_score"]:
            maximum += doc["max_score"]  # type: ignore[operator]
            total += sum(t["score"] for t in tests)
        if doc["status"] in ("fail", "error") and failure is None:
            failure = str(doc["status"])
    return total, maximum, summary, failure


@pytest.mark.parametrize("case", sorted(CASES))
def test_classroom_documents_are_what_the_reporter_needs(case: str) -> None:
    result = CASES[case]
    outputs = classroom.outputs(result)
    for name, value in outputs.items():
        assert re.fullmatch(r"[a-z][a-z0-9]*_result", name)
        assert len(value.encode()) < 64 * 1024  # one env value must stay under 128 KiB
        doc = _decode(value)
        assert doc["version"] == 1 and doc["status"] in ("pass", "fail", "error")
        assert isinstance(doc["max_score"], int | float) and not isinstance(doc["max_score"], bool)
        (test,) = doc["tests"]  # type: ignore[misc]
        assert set(test) >= {"name", "status", "score", "message", "line_no"}
        assert type(test["score"]) in (int, float) and test["status"] == doc["status"]
    total, maximum, summary, failure = _reporter_view(outputs)
    assert total == pytest.approx(result.score) and maximum == pytest.approx(result.max_score)
    # per runner, the summary table and the points sent agree
    for doc, shown in zip(map(_decode, outputs.values()), summary, strict=True):
        if doc["max_score"]:
            assert shown == doc["tests"][0]["score"]  # type: ignore[index]
    assert (failure is None) == result.full_marks


def test_classroom_whole_points_are_integers() -> None:
    docs = [_decode(v) for v in classroom.outputs(TYPICAL).values()]
    assert [type(d["max_score"]) for d in docs] == [int, int, int, int, float]
    assert docs[-1]["max_score"] == 2.5


def test_classroom_could_not_run_fills_every_expected_runner() -> None:
    expected = [GraderTest(f"test_{i}", f"check {i}", "q1", 2) for i in range(3)]
    outputs = classroom.outputs(COULD_NOT_RUN, expected)
    assert list(outputs) == [r.output_name for r in runners_for(expected)]
    for doc in map(_decode, outputs.values()):
        assert doc["status"] == "error" and doc["max_score"] == 2
        assert "could not be graded" in doc["tests"][0]["message"]  # type: ignore[index]
    # with nothing known the reporter still gets one readable, failing document
    (only,) = classroom.outputs(COULD_NOT_RUN).values()
    assert _decode(only)["status"] == "error"


def test_classroom_runner_ids_are_alphanumeric_and_unique() -> None:
    tests = [GraderTest("test_a-b", "t", "q1", 1), GraderTest("test_ab", "t", "q1", 1),
             GraderTest("test_x[1-2]", "t", None, 1), GraderTest("test_é", "t", None, 1),
             GraderTest("test_" + "x" * 80, "t", "q9", 1), GraderTest("test_" + "x" * 81, "t",
                                                                     "q9", 1)]
    ids = [r.id for r in runners_for(tests)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z][a-z0-9]{0,39}", i) for i in ids), ids
    assert ids[:3] == ["q1ab", "q1ab2", "x12"]


def test_classroom_long_message_capped() -> None:
    doc = _decode(classroom.outputs(LONG_MESSAGE)["q1prediction_result"])
    message = doc["tests"][0]["message"]  # type: ignore[index]
    assert message.endswith(TRUNCATION_MARKER)
    assert len(message.encode("utf-8")) <= classroom.MESSAGE_LIMIT_BYTES
    assert "\n::error::" not in message and "\x1b" not in message


def test_classroom_in_actions_appends_outputs_and_summary(tmp_path: Path) -> None:
    out, summary = tmp_path / "output", tmp_path / "summary.md"
    out.write_text("earlier=1\n", encoding="utf-8")
    env = {"GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}
    assert deliver(NON_ASCII, Format.CLASSROOM, output=None, env=env) is None
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "earlier=1"
    parsed = dict(line.split("=", 1) for line in lines[1:])
    assert parsed == classroom.outputs(NON_ASCII)
    assert summary.read_text(encoding="utf-8").startswith(markdown.render(NON_ASCII))
    # outside Actions the same lines go to stdout
    assert deliver(NON_ASCII, Format.CLASSROOM, output=None, env={}) == classroom.render(NON_ASCII)


# -- Markdown and --output -----------------------------------------------------------------
def test_markdown_table_survives_hostile_text() -> None:
    text = markdown.render(LONG_MESSAGE)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for row in rows:  # every row has exactly the header's number of unescaped pipes
        assert len(re.findall(r"(?<!\\)\|", row)) in (6, 4)
    assert TRUNCATION_MARKER.strip().replace("[", "\\[").replace("]", "\\]") in text


def test_output_file_is_written_atomically_for_every_machine_format(tmp_path: Path) -> None:
    for fmt in Format:
        if not fmt.machine:
            continue
        dest = tmp_path / "out" / f"result.{fmt.value}"
        assert deliver(TYPICAL, fmt, output=dest, env={}) is None
        assert dest.read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"result.{f.value}" for f in Format if f.machine)  # no temporary files left behind


def test_points_rounding_for_odd_values() -> None:
    third = Result("test_t", "t", None, 1 / 3, 1 / 3, Status.PASSED, "")
    (value,) = classroom.outputs(dataclasses.replace(TYPICAL, tests=(third,))).values()
    doc = _decode(value)
    assert doc["max_score"] == 0.33 and doc["tests"][0]["score"] == 0.33  # type: ignore[index]


# -- JSON ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_json_matches_the_documented_schema(case: str) -> None:
    import jsonschema

    from mlgrade.render import json_format

    schema_path = Path(__file__).resolve().parents[2] / "docs" / "result-schema.json"
    doc = json.loads(json_format.render(CASES[case]))
    jsonschema.validate(doc, json.loads(schema_path.read_text(encoding="utf-8")))
    assert doc["schema_version"] and doc["score"] == CASES[case].score
