from __future__ import annotations

import pytest

from mlgrade.assignments import Limits
from mlgrade.config import DEFAULT_SEED, Settings, resolve_settings
from mlgrade.errors import SettingError


def test_precedence_cli_over_env_over_assignment_over_default() -> None:
    limits = Limits(cell_timeout=11, notebook_timeout=22)
    env = {"MLGRADE_CELL_TIMEOUT": "33", "MLGRADE_SEED": "7"}
    s = resolve_settings({"cell_timeout": 44.0, "seed": None}, limits, env)
    assert s.cell_timeout == 44.0  # CLI
    assert s.seed == 7  # env
    assert s.notebook_timeout == 22  # assignment
    assert s.call_timeout == Settings().call_timeout  # default
    assert resolve_settings({}, None, {}).seed == DEFAULT_SEED


@pytest.mark.parametrize(
    ("cli", "env", "where"),
    [
        ({"cell_timeout": -1}, {}, "--cell-timeout"),
        ({}, {"MLGRADE_NOTEBOOK_TIMEOUT": "soon"}, "environment MLGRADE_NOTEBOOK_TIMEOUT"),
        ({"isolation": "docker"}, {}, "--isolation"),
        ({"memory_mb": -5}, {}, "--memory-mb"),
    ],
)
def test_bad_values_say_where_they_came_from(cli: dict, env: dict, where: str) -> None:
    with pytest.raises(SettingError, match=where):
        resolve_settings(cli, None, env)


def test_bad_assignment_limits_are_reported() -> None:
    with pytest.raises(SettingError, match=r"assignment.toml \[limits\]"):
        resolve_settings({}, Limits(cell_timeout=0), {})
