"""Graders of the survival target. Every file in the job folder is read through
``mlgrade.grading.files``: no-follow, regular files only, size-capped, third-party readers in a
child process under a timeout."""

import sqlite3
import tempfile
from pathlib import Path

from mlgrade.grading import expect, expect_close, points
from mlgrade.grading.files import copy_job_tree, fresh_path, run_isolated, write_job_file


@points(1, question="q1")
def test_answer(nb):
    """`answer` is 42"""
    expect_close(nb.get("answer"), 42.0, "`answer` should be the number 42.")


@points(1, question="q2")
def test_twice(nb, rng):
    """twice(n) is 2n"""
    n = int(rng.integers(1, 1000))
    expect(nb.call("twice", n) == 2 * n, "twice(n) should return 2 * n.")


@points(1, question="q3")
def test_report(nb):
    """write_report(path) writes `ok` to path"""
    nb.call("write_report", "report.txt")
    expect(nb.read_file("report.txt", max_bytes=10_000).strip() == b"ok",
           "write_report(path) should write the text `ok` to path.")


@points(1, question="q4")
def test_count_rows(nb, job_dir, rng):
    """count_rows(path) counts the rows of table `t` in a database the grader made"""
    rows = int(rng.integers(3, 30))
    db = fresh_path(job_dir, "grader_", ".db")  # an unpredictable name, made O_EXCL
    with tempfile.TemporaryDirectory() as tmp:  # built privately, copied in without links
        con = sqlite3.connect(Path(tmp) / "t.db")
        con.execute("CREATE TABLE t (x INTEGER)")
        con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
        con.commit()
        con.close()
        write_job_file(db, (Path(tmp) / "t.db").read_bytes())
    expect(nb.call("count_rows", db.name) == rows, "count_rows(path) should count the rows of t.")


def _read_runs(root: str) -> list[str]:
    """Runs in a child process: the store is a grader-private copy."""
    return sorted(p.read_text().strip() for p in Path(root).glob("runs/*/meta.txt"))


@points(1, question="q5")
def test_store(nb, job_dir):
    """save_store(folder) writes runs/<i>/meta.txt for three runs"""
    nb.call("save_store", "store")
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_job_tree(job_dir, "store", Path(tmp), max_bytes=1_000_000, max_files=200,
                             max_depth=6)
        runs = run_isolated(_read_runs, str(root), timeout=30, what="the store could not be read")
    expect(runs == ["run 0", "run 1", "run 2"],
           "save_store(folder) should write folder/runs/<i>/meta.txt with `run <i>`.")
