"""A learner's repository is copied into the job folder by mlgrade.repo.intake: never written,
links and special files left behind (and said so), huge or escaping content refused. Real files,
no kernel."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from mlgrade.errors import NotebookInputError
from mlgrade.repo import intake
from mlgrade.repo.intake import copy_repository


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def test_folder_copy_skips_git_links_and_fifos(tmp_path: Path) -> None:
    src = tmp_path / "repo"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "app.py").write_text("x = 1\n")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (src / "secret").symlink_to("/etc/passwd")
    os.mkfifo(src / "pipe")
    before = _tree(src)
    (tmp_path / "job").mkdir()
    done = copy_repository(src, tmp_path / "job" / "repo")
    dest = tmp_path / "job" / "repo"
    assert _tree(dest) == {"pkg/app.py": b"x = 1\n"}
    assert not os.path.lexists(dest / "secret") and not os.path.lexists(dest / "pipe")
    assert done.files == 1 and len(done.notices) == 2
    assert "symbolic link" in done.notices[0] and "secret" in done.notices[0]
    assert _tree(src) == before


def test_zip_drops_the_top_folder_and_skips_link_entries(tmp_path: Path) -> None:
    archive = tmp_path / "r.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("r-main/README.md", "# r\n")
        zf.writestr("r-main/pkg/app.py", "x = 1\n")
        link = zipfile.ZipInfo("r-main/leak")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    done = copy_repository(archive, tmp_path / "out")
    assert _tree(tmp_path / "out") == {"README.md": b"# r\n", "pkg/app.py": b"x = 1\n"}
    assert any("leak" in n for n in done.notices)


def test_zip_entry_outside_the_repository_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("README.md", "# r\n")
        zf.writestr("../../escaped.txt", "boo")
    with pytest.raises(NotebookInputError, match="outside the repository"):
        copy_repository(archive, tmp_path / "out")
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_zip_naming_a_path_twice_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("README.md", "# one\n")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("README.md", "# two\n")
    with pytest.raises(NotebookInputError, match="twice"):
        copy_repository(archive, tmp_path / "out")


def test_huge_file_and_too_many_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 1000)
    big = tmp_path / "big"
    big.mkdir()
    (big / "model.bin").write_bytes(b"\0" * 1001)
    with pytest.raises(NotebookInputError, match="larger than"):
        copy_repository(big, tmp_path / "out1")
    monkeypatch.setattr(intake, "MAX_FILES", 3)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(4):
        (many / f"f{i}.txt").write_text("x")
    with pytest.raises(NotebookInputError, match="more than 3 files"):
        copy_repository(many, tmp_path / "out2")


def test_neither_folder_nor_zip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(NotebookInputError, match="neither a folder nor a .zip"):
        copy_repository(tmp_path / "notes.txt", tmp_path / "out")
    with pytest.raises(NotebookInputError, match="does not exist"):
        copy_repository(tmp_path / "missing", tmp_path / "out")


def test_discover_repositories_one_per_learner(tmp_path: Path) -> None:
    from mlgrade.repo.batch import discover_repositories, pack_repository

    root = tmp_path / "in"
    for name in ("alice", "capstone-bob"):
        (root / name / "pkg").mkdir(parents=True)
        (root / name / "pkg" / "app.py").write_text(f"who = {name!r}\n")
    (root / "alice" / ".git").mkdir()
    (root / "alice" / ".git" / "HEAD").write_text("ref\n")
    with zipfile.ZipFile(root / "carol.zip", "w") as zf:
        zf.writestr("carol-main/README.md", "# carol\n")
    (root / "notes.txt").write_text("hi")
    (root / "dave").symlink_to(root / "alice")
    found = discover_repositories(root, "capstone")
    assert [(s.learner, s.source) for s in found.submissions] == [
        ("alice", "alice/"), ("bob", "capstone-bob/"), ("carol", "carol.zip")]
    assert [s.source for s in found.skipped] == ["dave", "notes.txt"]
    packed = pack_repository(root / "alice")
    assert packed == pack_repository(root / "alice")  # same files, same bytes, same hash
    with zipfile.ZipFile(io.BytesIO(packed)) as zf:
        assert zf.namelist() == ["repo/pkg/app.py"]
    (root / "alice" / "pkg" / "app.py").write_text("who = 'changed'\n")
    assert discover_repositories(root, "capstone").submissions[0].content_hash != \
        found.submissions[0].content_hash
    out = tmp_path / "job"
    out.mkdir()
    archive = tmp_path / "alice.zip"
    archive.write_bytes(packed)
    copy_repository(archive, out / "repo")
    assert _tree(out / "repo") == {"pkg/app.py": b"who = 'alice'\n"}
