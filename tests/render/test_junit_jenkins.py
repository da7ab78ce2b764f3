"""`--format junit-jenkins`: JUnit XML that the Jenkins xUnit plugin accepts. It validates the
report against its junit-10.xsd, which rejects `<properties>` inside a `<testcase>` and a
`skipped` count on `<testsuites>`; tests/render/junit-10.xsd restates those constraints and a
real XSD validator (xmlschema) checks the output against it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from junitparser import Failure, JUnitXml
from tests.render.canned import CASES, TYPICAL

from mlgrade.render import Format, junit, renderer

SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("junit-10.xsd"))


def _errors(text: str) -> list[str]:
    return [str(e.reason) for e in SCHEMA.iter_errors(text.encode("utf-8"))]


@pytest.mark.parametrize("case", sorted(CASES))
def test_jenkins_variant_is_valid_against_junit_10(case: str) -> None:
    assert _errors(renderer(Format.JUNIT_JENKINS)(CASES[case])) == []


def test_the_schema_rejects_what_jenkins_rejects_in_the_default_junit() -> None:
    # the reason for the variant: the default output (read by GitHub/GitLab report actions, and
    # kept as it is) has testcase properties and a skipped count on the root
    reasons = " ".join(_errors(junit.render(TYPICAL)))
    assert "'skipped' attribute not allowed" in reasons
    assert "Unexpected child with tag 'properties'" in reasons


def test_jenkins_variant_says_the_same_as_the_default(tmp_path: Path) -> None:
    strict, default = junit.render_jenkins(TYPICAL), junit.render(TYPICAL)
    path = tmp_path / "jenkins.xml"
    path.write_text(strict, encoding="utf-8")
    (suite,) = list(JUnitXml.fromfile(str(path)))
    cases = list(suite)
    assert (suite.tests, suite.failures, suite.errors) == (5, 2, 0)
    assert [c.name for c in cases] == [c.get("name") for c in ET.fromstring(default).iter("testcase")]
    failed = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert [c.system_out for c in failed] == [
        "points: 1\nearned: 0\nquestion: q2\ntest_id: test_dot_mismatch",
        "points: 2\nearned: 0\nquestion: q3\ntest_id: test_mse_gradient"]
    root = ET.fromstring(strict)
    assert root.find("testsuite/properties/property[@name='score']").get("value") == "4.5"
