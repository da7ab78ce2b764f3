"""Discovery of submission layouts, zips and problems (no kernel)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mlgrade.batch.submissions import clean_learner_id, discover
from mlgrade.errors import UsageError

NB = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def touch(path: Path, text: str = NB) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_flat_and_per_learner_layouts_mix(tmp_path: Path) -> None:
    touch(tmp_path / "alice.ipynb")
    touch(tmp_path / "bob" / "month3.ipynb")
    touch(tmp_path / "month3-carol" / "month3.ipynb")  # GitHub Classroom clone name
    touch(tmp_path / "dave" / "work" / "my-notebook.ipynb")  # the only notebook: graded
    touch(tmp_path / "dave" / ".ipynb_checkpoints" / "my-notebook-checkpoint.ipynb")
    touch(tmp_path / "notes.txt", "x")
    touch(tmp_path / ".DS_Store", "x")
    found = discover(tmp_path, "month3")
    assert [(s.learner, s.source) for s in found.submissions] == [
        ("alice", "alice.ipynb"), ("bob", "bob/month3.ipynb"),
        ("carol", "month3-carol/month3.ipynb"), ("dave", "dave/work/my-notebook.ipynb")]
    assert [(s.source, s.reason) for s in found.skipped] == [
        ("notes.txt", "not a notebook (.ipynb)")]


def test_duplicates_and_ambiguous_folders_are_skipped_with_reasons(tmp_path: Path) -> None:
    touch(tmp_path / "alice.ipynb")
    touch(tmp_path / "Alice" / "month3.ipynb")
    touch(tmp_path / "bob" / "a.ipynb")
    touch(tmp_path / "bob" / "b.ipynb")
    touch(tmp_path / "carol" / "README.md", "x")
    touch(tmp_path / "erin.ipynb")
    found = discover(tmp_path, "month3")
    assert [s.learner for s in found.submissions] == ["erin"]
    reasons = {s.source: s.reason for s in found.skipped}
    assert "two submissions for learner 'Alice'" in reasons["Alice/month3.ipynb"]
    assert "alice.ipynb" in reasons["alice.ipynb"] and "keep one" in reasons["alice.ipynb"]
    assert "several notebooks for learner 'bob'" in reasons["bob/"]
    assert "name the one to grade month3.ipynb" in reasons["bob/"]
    assert reasons["carol/"] == "no notebook in this folder"


def test_the_assignment_named_notebook_wins_in_a_learner_folder(tmp_path: Path) -> None:
    touch(tmp_path / "bob" / "scratch.ipynb")
    touch(tmp_path / "bob" / "month3.ipynb")
    found = discover(tmp_path, "month3")
    assert [s.source for s in found.submissions] == ["bob/month3.ipynb"]


def test_empty_or_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    touch(tmp_path / "readme.txt", "x")
    with pytest.raises(UsageError, match=r"no notebook to grade in .* \(1 item\(s\) skipped\)"):
        discover(tmp_path, "month3")
    with pytest.raises(UsageError, match="does not exist"):
        discover(tmp_path / "nope", "month3")
    with pytest.raises(UsageError, match="neither a folder nor a .zip"):
        discover(tmp_path / "readme.txt", "month3")


def test_zip_of_a_wrapped_folder_is_unwrapped_and_never_escapes(tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("submissions/alice.ipynb", NB)
        z.writestr("submissions/bob/month3.ipynb", NB)
        z.writestr("submissions/../../evil.ipynb", NB)
        z.writestr("/abs.ipynb", NB)
        link = zipfile.ZipInfo("submissions/link.ipynb")
        link.external_attr = (0o120777 << 16)  # a symlink entry
        z.writestr(link, "/etc/passwd")
    out = tmp_path / "out"
    out.mkdir()
    found = discover(archive, "month3", out)
    assert [s.learner for s in found.submissions] == ["alice", "bob"]
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/abs.ipynb").exists()
    assert sorted(p.name for p in out.rglob("*.ipynb")) == ["alice.ipynb", "month3.ipynb"]


def test_learner_ids_are_safe_file_names() -> None:
    assert clean_learner_id("Ana María") == "Ana_María"
    assert clean_learner_id("../../etc") == "etc"
    assert clean_learner_id("...") == "unnamed"
