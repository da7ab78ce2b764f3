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


STARTER = Path(__file__).parent.parent / "assignments" / "month2" / "month2.ipynb"


def test_a_missing_notebook_names_the_file_beside_it_in_another_case(tmp_path: Path) -> None:
    (tmp_path / "Month2.ipynb").write_bytes(STARTER.read_bytes())
    if (tmp_path / "month2.ipynb").exists():
        pytest.skip("this file system ignores case")
    code, stderr = _check(tmp_path / "month2.ipynb")
    assert code == 2
    assert stderr.strip() == (f"error: {tmp_path / 'month2.ipynb'}: no such file. Did you mean "
                              "Month2.ipynb? (File names are case-sensitive here.)")


def test_a_missing_notebook_names_the_script_beside_it(tmp_path: Path) -> None:
    (tmp_path / "month2.py").write_text("x = 1\n", encoding="utf-8")
    code, stderr = _check(tmp_path / "month2.ipynb")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "no such file. month2.py is a script, not a notebook: mlgrade grades the .ipynb." in stderr


def test_a_bare_month_number_is_one_clean_line() -> None:
    result = runner.invoke(app, ["check", "3"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: unknown assignment '3' (did you mean 'month3'?). Available: capstone, month1, "
        "month2, month3, month4, month5, month6. Run `mlgrade list` to see assignments.")


def _broken(tmp: Path, change: str) -> Path:
    nb = json.loads(STARTER.read_text(encoding="utf-8"))
    kinds = [c["cell_type"] for c in nb["cells"]]
    code2 = [i for i, k in enumerate(kinds) if k == "code"][1]  # the second code cell
    first_md = kinds.index("markdown")
    exec(change, {"nb": nb, "code2": code2, "md": first_md})
    path = tmp / "broken.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "expected"), [
    ("nb['cells'][md]['cell_type'] = 'weird'",
     "cell {md} of the file has an unknown cell_type 'weird' (code, markdown or raw)"),
    ("nb['cells'][code2]['source'] = 5",
     "code cell 2 (cell {code2} of the file): its source is a number, where a list or a string belongs"),
    ("nb['cells'][code2]['outputs'] = [{'output_type': 'stream', 'text': 'x'}]",
     "code cell 2 (cell {code2} of the file): its output 1: 'name' is a required property"),
    ("nb['cells'][code2]['outputs'] = [{'output_type': 'bogus'}]",
     "code cell 2 (cell {code2} of the file): its output 1 has an unknown output_type ('bogus')"),
    ("nb['cells'][md]['outputs'] = []",
     "cell {md} of the file (a markdown cell): Additional properties are not allowed ('outputs' "
     "was unexpected)"),
    ("nb['cells'][code2] = 7", "cell {code2} of the file is a number, not a cell"),
    ("nb['nbformat_minor'] = 'x'", "the notebook's nbformat_minor is a string, where a whole number "
     "belongs"),
])
def test_an_invalid_notebook_is_one_line_naming_the_cell(tmp_path: Path, change: str,
                                                          expected: str) -> None:
    path = _broken(tmp_path, change)
    kinds = [c["cell_type"] for c in json.loads(STARTER.read_text(encoding="utf-8"))["cells"]]
    numbers = {"md": kinds.index("markdown") + 1,
               "code2": [i for i, k in enumerate(kinds) if k == "code"][1] + 1}
    code, stderr = _check(path)
    assert code == 2
    assert stderr.strip() == (f"error: {path} is not a valid notebook: {expected.format(**numbers)}."
                              " Open it in Jupyter, fix or delete that part, and save it again.")
