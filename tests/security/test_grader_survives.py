"""The grader process survives anything a learner's notebook writes (issue 13).

Kernel cases run ``mlgrade check survive NOTEBOOK --format json`` in a child process, in each
tier, against ``assignments/survive`` (five one-point tests that read a value, call a function,
read a file, write a database into the job folder and copy a folder out of it). For every case:
the verdict is the exact set of passing tests (the attacked test fails with a reason), the
grader's own peak RSS (VmHWM of the child mlgrade process) stays under 400 MB, stdout is one
JSON document, nothing appears outside the job folder, and no process or temporary folder is
left. The file helpers, the tree walk and the stream cleaner are also tested directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from tests.conftest import default_signals
from tests.security.redteam_support import ASSIGNMENTS, TIERS
from tests.timing import scaled

from mlgrade.bridge.client import LearnerFailure
from mlgrade.grading.files import copy_job_tree, fresh_path, read_job_file, run_isolated
from mlgrade.kernel_output import (
    MAX_MESSAGE_VALUES,
    OVERSIZED,
    FrameUnpacker,
    _plain_display,
    bounded_unpack,
    clean_stream_text,
    values_outside_strings,
)
from mlgrade.sandbox.tree import chown_tree, remove_tree

MAX_GRADER_RSS_MB = 400
ALL = frozenset({"test_answer", "test_twice", "test_report", "test_count_rows", "test_store"})
# the grader's peak RSS, written by the child when it exits (atexit runs after typer's exit)
RSS_WRAPPER = (
    "import atexit, os, resource, sys\n"
    "def _rss():\n"  # VmHWM: this image's own peak (ru_maxrss keeps a big parent's after exec)
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    with open('/proc/self/status') as status:\n"
    "        peak = next((int(l.split()[1]) for l in status if l.startswith('VmHWM:')), peak)\n"
    "    with open(os.environ['SURVIVE_RSS_FILE'], 'w') as f:\n"
    "        f.write(str(peak))\n"
    "atexit.register(_rss)\n"
    "from mlgrade.cli import main\n"
    "sys.argv = ['mlgrade', *sys.argv[1:]]\n"
    "main()\n"
)
HONEST = {
    "imports": "import os, sys, sqlite3",
    "answer": "answer = 42.0",
    "twice": "def twice(n):\n    return 2 * n",
    "report": "def write_report(path):\n    with open(path, 'w') as f:\n        f.write('ok')",
    "count": ("def count_rows(path):\n    con = sqlite3.connect(path)\n    try:\n"
              "        return con.execute('SELECT COUNT(*) FROM t').fetchone()[0]\n"
              "    finally:\n        con.close()"),
    "store": ("def save_store(folder):\n    for i in range(3):\n"
              "        os.makedirs(f'{folder}/runs/{i}', exist_ok=True)\n"
              "        with open(f'{folder}/runs/{i}/meta.txt', 'w') as f:\n"
              "            f.write(f'run {i}')"),
}
DEEP_TREE = (  # 1,500 nested folders, made with directory descriptors (no path limit)
    "def deep_tree(where, levels=1500):\n    os.makedirs(where, exist_ok=True)\n"
    "    fd = os.open(where, os.O_RDONLY)\n    for _ in range(levels):\n"
    "        os.mkdir('d', dir_fd=fd)\n        nxt = os.open('d', os.O_RDONLY, dir_fd=fd)\n"
    "        os.close(fd)\n        fd = nxt\n    os.close(fd)"
)


@dataclass(frozen=True)
class Case:
    """A hostile notebook: ``replace`` swaps honest cells by key, ``after`` cells run last.
    ``fails`` is the set of tests that must fail, each feedback holding ``words``."""

    name: str
    replace: dict[str, str] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    fails: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()
    truncated: bool = False
    errors: tuple[str, ...] = ()  # the names of the errors the execution must report


CASES = [
    Case("report_is_a_link_to_a_grader_file",
         {"report": "def write_report(path):\n    os.symlink('@OUTSIDE@/secret.txt', path)"},
         fails=frozenset({"test_report"}), words=("symbolic link",)),
    Case("report_is_a_fifo", {"report": "def write_report(path):\n    os.mkfifo(path)"},
         fails=frozenset({"test_report"}), words=("FIFO",)),
    Case("store_is_a_link_to_a_grader_folder",
         {"store": "def save_store(folder):\n    os.symlink('@OUTSIDE@/store', folder)"},
         fails=frozenset({"test_store"}), words=("symbolic link",)),
    Case("store_holds_a_fifo", {"store": HONEST["store"] + "\n    os.remove(f'{folder}/runs/1/meta.txt')"
                                "\n    os.mkfifo(f'{folder}/runs/1/meta.txt')"},
         fails=frozenset({"test_store"}), words=("FIFO",)),
    Case("store_1500_levels_deep", {"store": DEEP_TREE + "\n" + HONEST["store"]
                                    + "\n    deep_tree(f'{folder}/runs/0/deep')"},
         fails=frozenset({"test_store"}), words=("nested deeper",)),
    Case("tree_1500_levels_deep_left_in_the_job_folder",
         after=(DEEP_TREE + "\ndeep_tree('left_behind')",)),
    Case("metadata_40_outputs_of_25_mb", after=(
        "from IPython.display import display\nfor i in range(40):\n"
        "    display({'text/plain': 'x'}, raw=True, metadata={'k': 'm' * 25_000_000})",),
         truncated=True),
    Case("metadata_of_millions_of_empty_dicts", after=(  # a small frame, millions of objects
        "from IPython.display import display\nfor i in range(10):\n"
        "    display({'text/plain': 'x'}, raw=True, metadata={'k': [{}] * 6_000_000})",),
         truncated=True),
    Case("comm_message_flood", after=(
        "from comm import create_comm\nfor i in range(60):\n"
        "    c = create_comm(target_name='jupyter.widget', data={'state': {'v': 'w' * 5_000_000},"
        " 'buffer_paths': []})\n"
        "    c.send(data={'method': 'update', 'state': {'v': 'z' * 5_000_000}})",),
         truncated=True),
    Case("line_of_900_kb_in_90_writes", after=(  # kept whole (under the 1 MB cell cap)
        "for i in range(90):\n    sys.stdout.write('x' * 10_000)\n    sys.stdout.flush()",)),
    Case("flood_of_10_000_tiny_writes", after=(  # each message costs its overhead too
        "for i in range(10_000):\n    sys.stdout.write('x' * 90)\n    sys.stdout.flush()",),
         truncated=True),
    Case("exception_with_a_5_mb_message", after=("raise ValueError('v' * 5_000_000)",),
         truncated=True, errors=("ValueError",)),
    Case("line_of_20_mb_during_a_grader_call", {
        "twice": "def twice(n):\n    sys.stdout.write('y' * 20_000_000)\n    return 2 * n"}),
]


def build(case: Case, outside: Path) -> nbformat.NotebookNode:
    cells = [case.replace.get(key, source) for key, source in HONEST.items()] + list(case.after)
    nb = new_notebook(cells=[new_code_cell(c.replace("@OUTSIDE@", str(outside))) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    rss_mb: float
    seconds: float


def run_check(notebook: Path, tier: str, tmp: Path, *extra: str,
              assignments: Path = ASSIGNMENTS) -> Run:
    """``mlgrade check survive NOTEBOOK --format json`` in a child process with a private
    TMPDIR (so its job folders can be counted), and that child's own peak RSS."""
    rss_file = tmp / f"rss-{time.monotonic_ns()}"  # removed before the folder is checked
    # a clean start, whatever earlier tests in this session left in the process: only the
    # variables a user's shell would have (and the machine's OpenBLAS settings), default signal
    # handling, its own folder and session
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "LOGNAME")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("OPENBLAS_")}
    env.update({"MLGRADE_ASSIGNMENTS": str(assignments), "TMPDIR": str(tmp),
                "SURVIVE_RSS_FILE": str(rss_file)})
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, "check", "survive", str(notebook), "--format",
         "json", "--isolation", tier, "--memory-mb", "2048", *extra],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=tmp.parent,
        start_new_session=True, preexec_fn=default_signals)
    seconds = time.monotonic() - start
    rss_mb = int(rss_file.read_text()) / 1024 if rss_file.exists() else float("nan")
    rss_file.unlink(missing_ok=True)
    return Run(done.returncode, done.stdout, done.stderr, rss_mb, seconds)


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or working directory names ``text``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if text in cmdline or cwd.startswith(text):
            found.append(int(pid))
    return found



@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files of the grader's side that a link in the job folder may point at."""
    folder = tmp_path / "outside"
    (folder / "store" / "runs").mkdir(parents=True)
    for i in range(3):
        (folder / "store" / "runs" / str(i)).mkdir()
        (folder / "store" / "runs" / str(i) / "meta.txt").write_text(f"run {i}")
    (folder / "secret.txt").write_text("ok")
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*")}


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.clean_process
@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_grader_survives(case: Case, tier: str, tmp_path: Path, private_tmp: Path,
                         outside: Path) -> None:
    notebook = tmp_path / f"{case.name}.ipynb"
    nbformat.write(build(case, outside), notebook)
    before = _snapshot(outside)
    run = run_check(notebook, tier, private_tmp)
    print(f"\n[rss] {case.name} {tier}: {run.rss_mb:.0f} MB, {run.seconds:.1f} s, exit {run.code}")

    document = json.loads(run.stdout)  # exactly one JSON document (trailing data would raise)
    assert run.code == (1 if case.fails else 0), run.stderr[-2000:]
    passed = {t["id"] for t in document["tests"] if t["status"] == "passed"}
    assert passed == ALL - case.fails, document["tests"]
    for test in document["tests"]:
        if test["id"] in case.fails:
            assert all(w in test["feedback"] for w in case.words), test["feedback"]
    if case.truncated:
        assert document["execution"]["output_truncated"]
    assert [e["ename"] for e in document["execution"]["errors"]] == list(case.errors)
    assert run.rss_mb < MAX_GRADER_RSS_MB, f"the grader grew to {run.rss_mb:.0f} MB"
    assert _snapshot(outside) == before  # nothing written, created or removed outside the job
    assert os.listdir(private_tmp) == []  # the job folder (1,500 levels included) is gone
    assert _processes_mentioning(str(private_tmp)) == []


def test_nested_notebook_json_is_a_one_line_usage_error(tmp_path: Path, private_tmp: Path) -> None:
    nb = build(Case("plain"), tmp_path)
    nb.metadata["deep"] = "@DEEP@"
    path = tmp_path / "deep.ipynb"  # nested by hand: json.dumps itself would recurse 900 levels
    path.write_text(nbformat.writes(nb).replace('"@DEEP@"', '{"a": ' * 900 + "{}" + "}" * 900))
    run = run_check(path, "process", private_tmp)
    assert run.code == 2
    assert run.stdout == ""  # --format json: one document or nothing
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "nested more than" in lines[0], run.stderr
    assert "Traceback" not in run.stderr


# -------------------------------------------------------------- helpers, without a kernel

@pytest.fixture
def job(tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.txt").write_bytes(b"fine")
    (folder / "sub" / "inner.txt").write_bytes(b"inner")
    (tmp_path / "grader-secret").write_text("secret")
    os.symlink(tmp_path / "grader-secret", folder / "link.txt")
    os.symlink(tmp_path, folder / "linked-dir")
    os.mkfifo(folder / "fifo")
    return folder


def test_read_job_file_refuses_links_fifos_folders_and_oversize(job: Path) -> None:
    assert read_job_file(job, "ok.txt", 100) == b"fine"
    assert read_job_file(job, "sub/inner.txt", 100) == b"inner"
    refusals = {"link.txt": "symbolic link", "fifo": "FIFO", "sub": "folder",
                "linked-dir/grader-secret": "symbolic link", "missing": "not found"}
    for relpath, words in refusals.items():
        start = time.monotonic()
        with pytest.raises(LearnerFailure, match=words):
            read_job_file(job, relpath, 100)
        assert time.monotonic() - start < scaled(5)  # a FIFO never blocks
    with pytest.raises(LearnerFailure, match="over the 3-byte limit"):
        read_job_file(job, "ok.txt", 3)
    for bad in ("../x", "/etc/passwd", "."):
        with pytest.raises(ValueError):  # a grader bug, not the learner's
            read_job_file(job, bad, 100)


def test_copy_job_tree_copies_plain_trees_and_refuses_the_rest(job: Path, tmp_path: Path) -> None:
    store = job / "store"
    for i in range(3):
        (store / "runs" / str(i)).mkdir(parents=True)
        (store / "runs" / str(i) / "meta.txt").write_text(f"run {i}")
    dest = tmp_path / "copies"
    dest.mkdir()
    root = copy_job_tree(job, "store", dest, max_bytes=100, max_files=20, max_depth=3)
    assert root == dest / "store"
    assert sorted(p.read_text() for p in root.rglob("meta.txt")) == ["run 0", "run 1", "run 2"]
    limits = [({"max_bytes": 100, "max_files": 5, "max_depth": 3}, "too many files"),
              ({"max_bytes": 100, "max_files": 20, "max_depth": 1}, "nested deeper"),
              ({"max_bytes": 10, "max_files": 20, "max_depth": 3}, "limit")]
    for limits_kw, words in limits:
        other = Path(tempfile.mkdtemp(dir=tmp_path))
        with pytest.raises(LearnerFailure, match=words):
            copy_job_tree(job, "store", other, **limits_kw)
    os.symlink("/etc", store / "runs" / "1" / "etc")
    with pytest.raises(LearnerFailure, match="symbolic link"):
        copy_job_tree(job, "store", Path(tempfile.mkdtemp(dir=tmp_path)), max_bytes=10**6,
                      max_files=100, max_depth=5)
    with pytest.raises(LearnerFailure, match="symbolic link"):
        copy_job_tree(job, "linked-dir", Path(tempfile.mkdtemp(dir=tmp_path)), max_bytes=10**6,
                      max_files=100, max_depth=5)


def test_fresh_path_never_follows_a_planted_link(job: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "planted-target"
    names = iter(["0" * 16, "1" * 16])
    monkeypatch.setattr("secrets.token_hex", lambda n: next(names))  # force a collision
    os.symlink(target, job / f"grader_{'0' * 16}.db")
    path = fresh_path(job, "grader_", ".db")
    assert path.name == f"grader_{'1' * 16}.db"
    assert path.stat().st_size == 0 and oct(path.stat().st_mode & 0o777) == "0o644"
    assert not target.exists()


def _sum_rows(db: str) -> list[tuple[int, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT SUM(x), COUNT(*) FROM t").fetchall()
    finally:
        con.close()


def _raises(_: str) -> None:
    raise ValueError("mlflow.exceptions.MissingConfigException: malformed meta.yaml")


def _hangs(_: str) -> None:
    time.sleep(60)


def _crashes(_: str) -> None:
    os._exit(7)


def _returns_an_object(_: str) -> object:
    return re.compile("x")


def test_run_isolated_turns_every_failure_into_a_learner_failure(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    con.commit()
    con.close()
    assert run_isolated(_sum_rows, str(db), timeout=30, what="db") == [(6, 3)]
    cases = [(_raises, "ValueError: mlflow", 60), (_crashes, "crashed", 60),
             (_returns_an_object, "not plain data", 60), (_hangs, "longer than 5 s", 5)]
    for fn, words, timeout in cases:
        start = time.monotonic()
        with pytest.raises(LearnerFailure, match=f"^the store: .*{words}"):
            run_isolated(fn, str(db), timeout=timeout, what="the store")
        assert time.monotonic() - start < scaled(30)  # the hung reader is killed at its timeout


def test_tree_walks_are_iterative_and_never_follow_links(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    root.mkdir()
    (tmp_path / "keep.txt").write_text("keep")
    fd = os.open(root, os.O_RDONLY)
    for i in range(1500):
        os.mkdir("d", dir_fd=fd)
        os.symlink(str(tmp_path / "keep.txt"), "link", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
        if i == 700:
            os.fchmod(fd, 0)  # a folder the learner made unreadable
    os.close(fd)
    chown_tree(root, os.getuid(), os.getgid())
    remove_tree(root)
    assert not root.exists() and (tmp_path / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("text", [
    "plain\n", "a\rb", "abc\r\n", "ab\rcd\r", "x\b\by", "\b\bq", "a\b\n\bb", "p\r\rq\b\r",
    "line1\nprogress 10%\rprogress 90%\rdone\n", "\r", "\b", "a\r\b",
])
def test_stream_cleaning_matches_nbclient(text: str) -> None:
    from nbclient.client import _RGX_CARRIAGERETURN

    assert clean_stream_text(text) == _RGX_CARRIAGERETURN.sub("", text)


@pytest.mark.parametrize(("content", "fast"), [
    ({"data": {"application/x.mlgrade.result": "{}"}, "metadata": {}}, True),
    ({"data": {"text/plain": "1", "text/html": "<b>1</b>"}, "metadata": {"a": {"b": [1]}}}, True),
    ({"data": {"application/json": "x"}, "metadata": {}}, False),  # any JSON: nbclient's path
    ({"data": {"text/plain": ["a", "b"]}, "metadata": {}}, False),  # lines: nbclient's path
    ({"data": {"text/plain": 1}, "metadata": {}}, False),
    ({"data": {"not a mime": "x"}, "metadata": {}}, False),
    ({"data": {"text/plain": "x"}, "metadata": []}, False),
    ({"data": {"text/plain": "x"}}, False),
    ({"data": {}, "metadata": {}}, False),
    ({"data": "text/plain", "metadata": {}}, False),
    ("not a dict", False),
])
def test_grader_answers_skip_only_validation_they_would_pass(content: Any, fast: bool) -> None:
    """A hidden cell's text-only display output is built without nbformat's schema check
    (it costs as much as the call itself): only where that check passes and builds the same
    node; anything else goes through nbclient's validating path unchanged."""
    from nbformat.v4 import output_from_msg

    msg = {"msg_type": "display_data", "header": {"msg_type": "display_data"},
           "content": content}
    built = _plain_display(msg)
    assert (built is not None) == fast
    if built is not None:
        assert built == output_from_msg(msg)
    assert _plain_display({**msg, "msg_type": "stream"}) is None


def test_kernel_frames_are_bounded_before_they_are_parsed() -> None:
    answer = json.dumps({"status": "ok", "value": {"t": "list", "items": [
        {"t": "int", "v": i} for i in range(400_000)]}})  # 1.2 million brackets and commas
    frame = json.dumps({"data": {"application/x.mlgrade.result": answer}}).encode()
    assert values_outside_strings(frame) < 10  # they are inside one string
    assert bounded_unpack(frame)["data"]["application/x.mlgrade.result"] == answer
    with pytest.raises(ValueError, match="more than"):
        bounded_unpack(json.dumps({"k": [{}] * (MAX_MESSAGE_VALUES + 1)}).encode())
    with pytest.raises(ValueError, match="more than"):  # a million strings is a million values
        bounded_unpack(b"[" + b'"a",' * (MAX_MESSAGE_VALUES + 1) + b'"a"]')
    start = time.monotonic()  # unterminated strings: still one linear pass
    assert values_outside_strings(b'"\\"' * 2_000_000 + b'"abc\\') >= 1
    assert time.monotonic() - start < scaled(20)
    unpack = FrameUnpacker()
    assert unpack(b'{"a": 1}') == {"a": 1}  # no execution running: parsed
    unpack.room = 1000
    big = b'{"a": "' + b"x" * (2 << 20) + b'"}'
    assert unpack(big) == {OVERSIZED: len(big), "status": "error"}  # never parsed
    error = b'{"traceback": ["' + b"t" * (2 << 20) + b'"], "ename": "KeyError", "evalue": "k"}'
    assert unpack(error)["ename"] == "KeyError"  # an oversized error keeps its name
    assert unpack(b'{"a": 1}') == {"a": 1}


def test_stream_cleaning_is_linear_on_one_long_line() -> None:
    start = time.monotonic()
    assert len(clean_stream_text("x" * 20_000_000 + "\r" + "y" * 10)) == 10
    assert clean_stream_text("a\rb\n" * 1_000_000) == "b\n" * 1_000_000
    assert time.monotonic() - start < scaled(10)  # nbclient's regex takes minutes on a 900 kB line


def _broken_assignments(tmp_path: Path) -> Path:
    """The survive assignment with a dangling link in its data folder: copying it into the
    job folder raises an exception that is no MlgradeError (a bug, as far as mlgrade knows)."""
    root = tmp_path / "assignments"
    shutil.copytree(ASSIGNMENTS / "survive", root / "survive")
    (root / "survive" / "data").mkdir()
    os.symlink(tmp_path / "nowhere", root / "survive" / "data" / "broken-link")
    return root


def test_an_internal_error_in_check_is_exit_4_one_line_and_no_document(
        tmp_path: Path, private_tmp: Path) -> None:
    notebook = tmp_path / "plain.ipynb"
    nbformat.write(build(Case("plain"), tmp_path), notebook)
    run = run_check(notebook, "process", private_tmp, assignments=_broken_assignments(tmp_path))
    assert run.code == 4
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "Traceback" not in run.stderr
    assert os.listdir(private_tmp) == []  # the half-made job folder was removed


def test_a_batch_records_an_internal_error_and_goes_on(tmp_path: Path) -> None:
    """An exception that is no MlgradeError (here: the assignment's data folder holds a
    dangling link, so copying it into the job folder fails) errors that submission as
    ``internal`` with a one-line reason; the batch records every submission and exits."""
    from typer.testing import CliRunner

    from mlgrade.cli import app

    root = _broken_assignments(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    for learner in ("ann", "ben"):
        nbformat.write(build(Case("plain"), tmp_path), folder / f"{learner}.ipynb")
    db = tmp_path / "g.db"
    result = CliRunner().invoke(app, ["--assignments", str(root), "grade", "survive", str(folder),
                                      "--gradebook", str(db), "--workers", "1",
                                      "--isolation", "none"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        got = conn.execute("SELECT l.name, s.status, s.problem, s.reason FROM submissions s "
                           "JOIN learners l ON l.id = s.learner_id ORDER BY l.name").fetchall()
    assert [row[:3] for row in got] == [("ann", "errored", "internal"),
                                        ("ben", "errored", "internal")]
    assert all(row[3].startswith("mlgrade failed internally (Error") and "\n" not in row[3]
               for row in got)


STUCK_GRADER = '''"""A grader stuck outside the kernel (in a reader that never returns, say)."""
import time

from mlgrade.grading import points


@points(1, question="q1")
def test_stuck(nb):
    """never ends"""
    time.sleep(120)
'''
CHECK_WITH_SHORT_DEADLINE = (
    "import json, sys\nfrom pathlib import Path\n"
    "from mlgrade.assignments import load_assignment\n"
    "from mlgrade.config import resolve_settings\nfrom mlgrade.pipeline import check_notebook\n"
    "a = load_assignment(Path(sys.argv[1]))\n"
    "s = resolve_settings({'grading_timeout': 2.0, 'isolation': 'process'}, a.limits, environ={})\n"
    "r = check_notebook(Path(sys.argv[2]), a, s).result\n"
    "print(json.dumps({'status': r.status.value, 'reason': r.reason}))\n"
)


@pytest.mark.kernel
def test_graders_stuck_outside_the_kernel_are_cut_at_the_grading_deadline(
        tmp_path: Path, private_tmp: Path) -> None:
    folder = tmp_path / "stuck"
    shutil.copytree(ASSIGNMENTS / "survive", folder)
    (folder / "graders" / "test_survive.py").write_text(STUCK_GRADER)
    notebook = tmp_path / "plain.ipynb"
    nbformat.write(build(Case("plain"), tmp_path), notebook)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHECK_WITH_SHORT_DEADLINE, str(folder),
                           str(notebook)], capture_output=True, text=True, timeout=100,
                          env={**os.environ, "TMPDIR": str(private_tmp)}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert time.monotonic() - start < min(scaled(60), 110)  # 2 s of grading + the grace, not 120 s
    verdict = json.loads(done.stdout)
    assert verdict["status"] == "errored"
    assert "grading did not finish within its 2 s limit" in verdict["reason"]
    assert os.listdir(private_tmp) == []
