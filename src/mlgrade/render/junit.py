"""``--format junit``: JUnit XML that CI test-report tools read (GitHub test-report actions,
GitLab's ``artifacts:reports:junit``, Jenkins).

One ``testsuite`` per graded notebook; one ``testcase`` per grader test with ``name``,
``classname`` (``mlgrade.<assignment>.<question>``) and ``time``; points as properties; a
lost test carries the learner-facing feedback as its ``failure`` message, a broken grader an
``error``. A notebook that could not be graded at all is reported as one errored testcase, so
a report tool never shows an empty, "green" suite.

``--format junit-jenkins`` (:func:`render_jenkins`) is the same report in the shape the Jenkins
xUnit plugin's ``junit-10.xsd`` accepts: no ``skipped`` count on ``<testsuites>`` and no
``<properties>`` inside a ``<testcase>`` (a test's points, question and id go to its
``<system-out>`` instead). ``--format junit`` stays as GitHub and GitLab report actions read it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mlgrade.render.common import could_not_run, errored_reason, fmt_points, truncate
from mlgrade.results import GradeResult, SubmissionStatus, TestStatus

MESSAGE_LIMIT = 2000  # characters of a failure message attribute and body
# characters XML 1.0 cannot hold at all, even escaped
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Text XML 1.0 can hold, cleaned and capped."""
    return truncate(_INVALID_XML.sub("", text), limit)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _properties(parent: ET.Element, pairs: list[tuple[str, str]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(props, "property", name=name, value=xml_text(value, 500))


def _system_out(result: GradeResult) -> str:
    lines = [f"score {fmt_points(result.score)}/{fmt_points(result.max_score)} ({result.status})"]
    if result.status is SubmissionStatus.ERRORED:
        lines.append(f"grading errored: {errored_reason(result)}")
    for e in result.execution.errors:
        where = f" (line: {e.line})" if e.line else ""
        lines.append(truncate(f"cell {e.cell} raised {e.ename}: {e.evalue}{where}", 500))
    lines += [f"note: {n}" for n in result.notices]
    return xml_text("\n".join(lines), 20_000)


def render(result: GradeResult) -> str:
    """The JUnit XML document, UTF-8, with an XML declaration."""
    return _document(result, jenkins=False)


def render_jenkins(result: GradeResult) -> str:
    """The JUnit XML document as the Jenkins xUnit plugin's ``junit-10.xsd`` validates it."""
    return _document(result, jenkins=True)


def _document(result: GradeResult, *, jenkins: bool) -> str:
    unrunnable = could_not_run(result)
    failures = sum(t.status is TestStatus.FAILED for t in result.tests)
    errors = sum(t.status is TestStatus.ERROR for t in result.tests) + (1 if unrunnable else 0)
    tests = len(result.tests) + (1 if unrunnable else 0)
    counts = {"tests": str(tests), "failures": str(failures), "errors": str(errors),
              "skipped": "0", "time": _seconds(result.duration_s)}
    top = {k: v for k, v in counts.items() if k != "skipped"} if jenkins else counts
    root = ET.Element("testsuites", {"name": "mlgrade", **top})
    suite = ET.SubElement(root, "testsuite",
                          {"name": xml_text(f"{result.assignment}: {result.title}", 500), **counts})
    _properties(suite, [
        ("assignment", result.assignment), ("notebook", result.notebook),
        ("status", str(result.status)), ("score", fmt_points(result.score)),
        ("max_score", fmt_points(result.max_score)), ("seed", str(result.seed)),
        ("isolation", result.isolation), ("mlgrade_version", result.mlgrade_version),
        ("grader_version", result.grader_version),
    ])
    for t in result.tests:
        case = ET.SubElement(suite, "testcase", name=xml_text(f"{t.title} [{t.id}]", 500),
                             classname=xml_text(f"mlgrade.{result.assignment}."
                                                f"{t.question or 'tests'}", 300),
                             time=_seconds(t.duration_s))
        pairs = [("points", fmt_points(t.points)), ("earned", fmt_points(t.earned)),
                 ("question", t.question or ""), ("test_id", t.id)]
        if not jenkins:
            _properties(case, pairs)
        if t.status is not TestStatus.PASSED:
            tag = "failure" if t.status is TestStatus.FAILED else "error"
            message = xml_text(t.feedback or "no points for this test")
            node = ET.SubElement(case, tag, message=message,
                                 type="points_lost" if tag == "failure" else "grader_error")
            node.text = message
        if jenkins:  # junit-10.xsd has no <properties> in a testcase: the same pairs as text
            ET.SubElement(case, "system-out").text = xml_text(
                "\n".join(f"{name}: {value}" for name, value in pairs), 1000)
    if unrunnable:
        case = ET.SubElement(suite, "testcase", name="the notebook could be graded",
                             classname=f"mlgrade.{xml_text(result.assignment, 200)}",
                             time=_seconds(result.duration_s))
        message = xml_text(errored_reason(result))
        node = ET.SubElement(case, "error", message=message, type="not_graded")
        node.text = message
    ET.SubElement(suite, "system-out").text = _system_out(result)
    ET.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")
