"""tests/probes.py: the independent probes agree with mlgrade's own detection where the tool
works, and a missing tool skips a test on a developer's machine but fails it under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.probes import BUBBLEWRAP, CGROUPS, CHROMIUM, PYTHON310, python310, requires

from mlgrade.sandbox import namespaced as namespaced_module
from mlgrade.sandbox.cgroup import cgroup_problem

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]


@requires(BUBBLEWRAP)
def test_mlgrade_sees_the_namespaced_tier_where_bubblewrap_works() -> None:
    namespaced_module.namespaced_problem.cache_clear()
    assert namespaced_module.namespaced_problem() is None


@requires(CGROUPS)
def test_mlgrade_sees_the_cgroup_layer_where_a_limited_child_cgroup_can_be_made() -> None:
    assert cgroup_problem() is None


@requires(PYTHON310)
def test_the_python310_found_is_a_real_310_interpreter() -> None:
    found = python310()
    assert found is not None and found.is_file() and found.name == "python3.10"


def test_probes_say_why_when_the_tools_are_not_on_path(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert BUBBLEWRAP.check() == "bubblewrap (bwrap) is not on PATH"
    assert CHROMIUM.check() == "chromium and chromedriver are not both on PATH"
    assert CGROUPS.check() is None or "cgroup" in str(CGROUPS.check())


USES_BWRAP = """
from tests.probes import BUBBLEWRAP, require, requires

@requires(BUBBLEWRAP)
def test_marked():
    pass

def test_inline():
    require(BUBBLEWRAP)
"""


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_tool_skips_on_a_laptop_and_fails_under_ci(
        ci: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_uses_bwrap=USES_BWRAP)
    empty = pytester.mkdir("empty-path")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PATH", str(empty))  # no bwrap: the probe must say so, whatever mlgrade says
    result = pytester.runpytest_subprocess("-p", "tests.probes", "-rsf")
    why = "bubblewrap unavailable: bubblewrap (bwrap) is not on PATH"
    if ci:
        result.assert_outcomes(errors=1, failed=1)  # the mark fails the setup, before fixtures
        assert result.stdout.str().count(why) >= 2 and "fails instead of skipping" in result.stdout.str()
    else:
        result.assert_outcomes(skipped=2)
        assert result.stdout.str().count(why) == 2
