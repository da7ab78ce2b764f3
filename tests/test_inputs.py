"""Bad input to `mlgrade check`: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgrade.cli import app

runner = CliRunner()


def _check(path: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["check", "month2", str(path)])
    return result.exit_code, result.stderr


def _bad_files(tmp: Path) -> dict[str, Path]:
    (tmp / "empty.ipynb").write_bytes(b"")
    (tmp / "garbage.ipynb").write_text("this is not json {", encoding="utf-8")
    (tmp / "list.ipynb").write_text(json.dumps([1, 2, 3]), encoding="utf-8")
    (tmp / "other.ipynb").write_text(json.dumps({"name": "not a notebook"}), encoding="utf-8")
    (tmp / "script.py").write_text("print('hello')\n", encoding="utf-8")
    (tmp / "folder.ipynb").mkdir()
    bad_cells = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                 "cells": [{"cell_type": "code", "source": 42}]}
    (tmp / "invalid.ipynb").write_text(json.dumps(bad_cells), encoding="utf-8")
    (tmp / "binary.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return {p.name: p for p in tmp.iterdir()} | {"missing.ipynb": tmp / "missing.ipynb"}


EXPECTED = {
    "missing.ipynb": "no such file",
    "empty.ipynb": "is empty",
    "garbage.ipynb": "not valid JSON",
    "binary.ipynb": "not valid JSON",
    "list.ipynb": "not a Jupyter notebook",
    "other.ipynb": "not a Jupyter notebook",
    "script.py": "Python script, not a notebook",
    "folder.ipynb": "is a folder",
    "invalid.ipynb": "not a valid notebook",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_gives_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    path = _bad_files(tmp_path)[name]
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    code, stderr = _check(path)
    assert code == 2
    assert stderr.startswith("error: ")
    assert EXPECTED[name] in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr
    after = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    assert after == before  # nothing modified, nothing added


def test_unknown_assignment_lists_the_known_ones(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "month99", str(tmp_path / "x.ipynb")])
    assert result.exit_code == 2
    assert "unknown assignment 'month99'" in result.stderr
    assert "month2" in result.stderr and "mlgrade list" in result.stderr


def test_bad_setting_names_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGRADE_SEED", "abc")
    nb = Path(__file__).parent.parent / "solutions" / "month2.ipynb"
    result = runner.invoke(app, ["check", "month2", str(nb)])
    assert result.exit_code == 2
    assert "environment MLGRADE_SEED" in result.stderr


def test_oversized_notebook_is_refused_before_parsing(tmp_path: Path) -> None:
    from mlgrade.errors import NotebookInputError
    from mlgrade.notebook import read_notebook

    path = tmp_path / "big.ipynb"
    path.write_bytes(b"{" + b" " * 2048 + b"}")
    with pytest.raises(NotebookInputError, match="over the"):
        read_notebook(path, max_bytes=1024)
