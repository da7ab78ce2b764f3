"""Golden tests: every output format, rendered from the shared canned results.

Regenerate after an intended change with ``MLGRADE_UPDATE_GOLDEN=1 pytest tests/render`` and
review the diff of ``tests/render/golden/`` before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.render.canned import CASES

from mlgrade.render import Format, renderer

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MLGRADE_UPDATE_GOLDEN") == "1"
EXTENSION = {
    Format.CONSOLE: "txt", Format.JSON: "json", Format.MARKDOWN: "md", Format.JUNIT: "xml",
    Format.JUNIT_JENKINS: "xml", Format.GRADESCOPE: "gradescope.json", Format.PRAIRIELEARN: "prairielearn.json",
    Format.CLASSROOM: "classroom.txt", Format.HTML: "html",
}


def golden_path(fmt: Format, case: str) -> Path:
    # A new Format member without an extension here fails with a KeyError: add one, then
    # regenerate the goldens.
    return GOLDEN / fmt.value / f"{case}.{EXTENSION[fmt]}"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fmt", list(Format), ids=str)
def test_golden(fmt: Format, case: str) -> None:
    text = renderer(fmt)(CASES[case])
    path = golden_path(fmt, case)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.is_file(), f"no golden file {path}: run MLGRADE_UPDATE_GOLDEN=1 pytest tests/render"
    assert text == path.read_bytes().decode("utf-8")


def test_every_format_has_goldens_and_nothing_stale() -> None:
    expected = {golden_path(fmt, case) for fmt in Format for case in CASES}
    present = {p for p in GOLDEN.rglob("*") if p.is_file()}
    assert present == expected


@pytest.mark.parametrize("fmt", list(Format), ids=str)
def test_render_is_deterministic_and_text(fmt: Format) -> None:
    for result in CASES.values():
        first = renderer(fmt)(result)
        assert isinstance(first, str) and first.endswith("\n")
        assert first == renderer(fmt)(result)


@pytest.mark.parametrize("case", sorted(CASES))
def test_console_report_fits_80_columns(case: str) -> None:
    from rich.cells import cell_len

    text = renderer(Format.CONSOLE)(CASES[case])
    wide = [line for line in text.splitlines() if cell_len(line) > 80]
    assert wide == []
    assert not any(line != line.rstrip() for line in text.splitlines())


def test_console_groups_by_question_and_folds_unstarted_questions() -> None:
    text = renderer(Format.CONSOLE)(CASES["started"])
    lines = text.splitlines()
    # each not-started question is exactly one line, and the stub hint is never repeated
    assert [ln.split()[0] for ln in lines if "not started" in ln] == ["Q2", "Q3"]
    assert "NotImplementedError" not in text
    assert "running: z = z + 1" in text
    assert "cell 8" in text


def test_a_question_on_its_placeholders_is_not_started_and_a_real_mistake_is_not() -> None:
    """A question is "not started" while its stubs raise NotImplementedError and its answers
    are still the starter's None; a wrong answer beside a stub keeps its own row and hint."""
    from tests.render.canned import STUB, _test

    from mlgrade.render.common import QuestionGroup
    from mlgrade.results import TestStatus

    stub = _test("test_cv", "cross-validated F1", "q2", 2, TestStatus.FAILED,
                 STUB.format("`cross_validated_f1(...)`"))
    unset = _test("test_cv_f1", "the reported cv_f1", "q2", 1, TestStatus.FAILED,
                  "`cv_f1` is not set yet (it is None): store the mean F1 in it.")
    wrong = _test("test_cv_f1", "the reported cv_f1", "q2", 1, TestStatus.FAILED,
                  "`cv_f1` is 0.41, not the mean F1 over the folds.")
    assert QuestionGroup("q2", "CV", (stub, unset)).not_started
    assert not QuestionGroup("q2", "CV", (stub, wrong)).not_started
    assert not QuestionGroup("q2", "CV", (unset,)).not_started  # nothing raises: not a stub
