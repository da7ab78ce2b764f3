"""Whatever value a learner's answer holds, grading ends in failed tests with reasons, never in
``errored`` (mlgrade's own fault) and never in points.

For every month, each answer the starter leaves to the learner (every stub that raises
``NotImplementedError`` and every ``name = None  # TODO``) is replaced in the reference solution
by one hostile value at a time: an integer no number type holds, NaN, a string, None, an object
mlgrade cannot read back, a ragged list, an array of infinities. Each such notebook is graded
through the real pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import nbformat
import pytest
from tests.conftest import assignment, solution

from mlgrade.results import GradeResult, TestStatus

pytestmark = [pytest.mark.kernel, pytest.mark.mutation]

MONTHS = [f"month{n}" for n in range(1, 7)]
VALUES = {
    "huge-int": "10**400",
    "nan": "float('nan')",
    "string": "'forty-two'",
    "none": "None",
    "object": "object()",
    "ragged": "[[1, 2], [3]]",
    "infinities": "__import__('numpy').full((3, 2), float('inf'))",
}


def learner_answers(month: str) -> tuple[list[str], list[str]]:
    """The functions and variables the starter leaves to the learner."""
    starter = nbformat.read(assignment(month).starter, as_version=4)
    functions, variables = [], []
    for cell in starter.cells:
        if cell.cell_type != "code":
            continue
        for found in re.finditer(r"^def (\w+)\(.*?(?=^\S|\Z)", cell.source, re.M | re.S):
            if "NotImplementedError" in found.group(0):
                functions.append(found.group(1))
        variables += re.findall(r"^(\w+) = None\s*# TODO", cell.source, re.M)
    return functions, variables


def hostile(month: str, value: str) -> nbformat.NotebookNode:
    """The reference solution whose every learner answer then holds ``value``."""
    functions, variables = learner_answers(month)
    lines = [f"_hostile = {value}"]
    lines += [f"def {name}(*args, **kwargs):\n    return _hostile" for name in functions]
    lines += [f"{name} = _hostile" for name in variables]
    nb = solution(month)
    nb.cells.append(nbformat.v4.new_code_cell("\n".join(lines)))
    return nb


@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("month", MONTHS)
def test_hostile_answers_fail_with_reasons(grade: Callable[..., GradeResult], month: str,
                                           value: str) -> None:
    assert learner_answers(month)[0], f"{month}: the starter's stubs were not found"
    result = grade(month, hostile(month, VALUES[value]))
    assert result.status == "graded", result.reason
    broken = [(t.id, t.feedback) for t in result.tests if t.status is TestStatus.ERROR]
    assert broken == []
    silent = [t.id for t in result.tests if t.status is TestStatus.FAILED and not t.feedback.strip()]
    assert silent == []
    assert result.score < result.max_score
