"""The learner's loop on the CLI: one question at a time, --watch, which stream holds what,
and the first-run mistakes (a typo, another month's notebook, a bad flag value, --dest)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from tests.conftest import REPO, SOLUTIONS, default_signals, replace_cell, solution
from typer.testing import CliRunner

from mlgrade.cli import app

runner = CliRunner()


# -- usage mistakes: one line in mlgrade's words, exit 2, no kernel -----------------------------
@pytest.mark.parametrize(("args", "line"), [
    (["--seed", "abc"], "error: --seed: seed must be a number, got 'abc'."),
    (["--timeout", "-1"], "error: --timeout: notebook_timeout must be a positive number of "
                          "seconds, got '-1'."),
    (["--cell-timeout", "soon"], "error: --cell-timeout: cell_timeout must be a number, got 'soon'."),
    (["-q", "q9"], "error: month2 has no question 'q9' (its questions: q1, q2, q3, q4, q5, q6, q7, "
                   "q8)."),
])
def test_bad_values_are_one_line_that_names_the_flag_typed(args: list[str], line: str) -> None:
    result = runner.invoke(app, ["check", "month2", str(SOLUTIONS / "month2.ipynb"), *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == line


@pytest.mark.parametrize(("args", "line"), [
    (["--bogus"], "error: No such option: --bogus. Run `mlgrade check --help` for the options."),
    (["-f", "xml"], "error: Invalid value for '--format' / '-f': Value error, 'xml' is not one of "),
])
def test_option_parser_errors_are_one_line_too(args: list[str], line: str) -> None:
    # the console entry point (not CliRunner): what a learner's shell runs
    done = subprocess.run([sys.executable, "-m", "mlgrade", "check", "month2", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(line)


def test_unknown_assignment_suggests_the_close_name() -> None:
    result = runner.invoke(app, ["check", "mnth3"])
    assert result.exit_code == 2
    assert "did you mean 'month3'?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_another_months_notebook_is_recognised_before_anything_runs() -> None:
    result = runner.invoke(app, ["check", "month2", str(SOLUTIONS / "month3.ipynb")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert (f"This looks like month3: run `mlgrade check month3 {SOLUTIONS / 'month3.ipynb'}`"
            in result.stderr)


def test_start_prints_the_command_that_checks_the_file_it_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["start", "month2", "--dest", "sub/dir/my work.ipynb"])
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    command = next(line.split("grade it:", 1)[1].strip() for line in lines if "grade it:" in line)
    assert command == "mlgrade check month2 'sub/dir/my work.ipynb'"
    assert shlex.split(command)[3] == "sub/dir/my work.ipynb" and (tmp_path / "sub/dir/my work.ipynb").is_file()
    assert any("jupyter" in line and "my work.ipynb" in line for line in lines)
    assert any('mlgrade.check("q1")' in line for line in lines)
    # the suggested command finds the file (it fails only for lack of a kernel run here: -q on
    # a question that does not exist proves the path was accepted before anything ran)
    probe = runner.invoke(app, ["check", "month2", "sub/dir/my work.ipynb", "-q", "q99"])
    assert "has no question" in probe.stderr


# -- one question, progress off a terminal, stdout for the report -------------------------------
@pytest.mark.kernel
def test_question_runs_only_its_graders_and_the_report_is_stdout(tmp_path: Path) -> None:
    nb = tmp_path / "month2.ipynb"
    nb.write_bytes((SOLUTIONS / "month2.ipynb").read_bytes())
    one = runner.invoke(app, ["check", "month2", str(nb), "--question", "q3", "-q", "Q7"])
    assert one.exit_code == 0, one.stderr
    assert "Q3  pass" in one.stdout and "Q7  pass" in one.stdout and "Q1" not in one.stdout
    assert "Score: 4 / 4" in one.stdout
    # progress off a terminal: plain lines on stderr, one per code cell, then the graders
    progress = one.stderr.splitlines()
    assert any(line.endswith("month2.ipynb (q3, q7): cell 1/9: import numpy as np (limit 60 s)")
               for line in progress)
    assert progress[-1].endswith("month2.ipynb (q3, q7): grading, 2 tests")
    assert not any("\x1b" in line for line in progress)  # no escape codes, no spinner
    doc = json.loads(runner.invoke(app, ["check", "month2", str(nb), "-q", "q2", "-f", "json"]).stdout)
    assert {t["question"] for t in doc["tests"]} == {"q2"} and doc["score"] == doc["max_score"]


@pytest.mark.kernel
def test_a_stopped_cell_shows_the_line_that_was_running(tmp_path: Path) -> None:
    nb = solution("month2")
    nb = replace_cell(nb, "def softmax", "def spin():\n    n = 0\n    while True:\n        n += 1\n")
    nb.cells.append(nbformat.v4.new_code_cell("x = 1\nspin()"))
    path = tmp_path / "month2.ipynb"
    nbformat.write(nb, path)
    result = runner.invoke(app, ["check", "month2", str(path), "-q", "q1", "--cell-timeout", "3",
                                 "-f", "json"])
    (error,) = json.loads(result.stdout)["execution"]["errors"]
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert error["ename"] == "Timeout"
    assert error["cell"] == len(code_cells)  # the last code cell, as the learner counts them
    assert error["line"] in ("n += 1", "while True:")  # inside spin(), not "x = 1"


# -- --watch: a file saved twice is checked three times; Ctrl-C leaves no kernel -----------------
def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a container's init may never reap one)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# the watch's own waiting line (a bare "watching" also matches paths under pytest's folders)
WATCHING = "for changes (Ctrl-C to stop)"


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.kernel
@pytest.mark.slow
def test_watch_rechecks_each_save_and_ctrl_c_leaves_no_kernel(tmp_path: Path) -> None:
    path = tmp_path / "month2.ipynb"
    starter = (REPO / "assignments/month2/month2.ipynb").read_bytes()
    path.write_bytes(starter)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "mlgrade", "check", "month2", str(path),
                                 "--watch", "-q", "q1"], stdout=stdout, stderr=stderr,
                                env={**os.environ, "COLUMNS": "80"}, cwd=tmp_path,
                                preexec_fn=default_signals)
        try:
            def reports() -> int:
                return out.read_text().count("Score:")

            assert _wait_for(lambda: reports() == 1 and WATCHING in err.read_text(), 120)
            # save 1: two writes in quick succession (an editor's temp write, then the real
            # one) are one change
            nb = nbformat.reads(starter.decode(), as_version=4)
            nbformat.write(replace_cell(nb, "prediction = None", "prediction = 0.0"), path)
            time.sleep(0.1)
            nbformat.write(replace_cell(nb, "prediction = None", "prediction = 1.7"), path)
            assert _wait_for(lambda: reports() == 2 and err.read_text().count(WATCHING) == 2, 120)
            assert out.read_text().split("Score:")[-1].startswith(" 1 / 1")
            # save 2: caught while its kernel runs (a slow cell: the check would otherwise be
            # over before the signal lands, and Ctrl-C between checks is exit 0), then Ctrl-C
            nbformat.write(replace_cell(nb, "prediction = None", "import time  # a slow cell\n"
                                        "time.sleep(120)\nprediction = 2.0"), path)
            assert _wait_for(lambda: err.read_text().count("changed: checking again") == 2, 60)
            assert _wait_for(lambda: "a slow cell" in err.read_text().split("checking again")[-1],
                             60)
            alive = _descendants(proc.pid)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
    assert reports() == 2  # the interrupted third check printed no report
    time.sleep(1)
    assert alive and not [pid for pid in alive if _running(pid)]
    assert "interrupted; the kernel was shut down." in err.read_text()


def test_ctrl_c_while_watching_between_checks_stops_quietly(tmp_path: Path) -> None:
    """Ctrl-C is --watch's documented way out: while it waits (no check running, no kernel),
    it ends the watch with exit 0 and no "interrupted" line. (A file that is not a notebook
    yet, as mid-save, is a one-line error and the watch goes on.) The signal waits for the
    watch's own line: the error line names the path, and pytest's folder for this test has
    "watching" in its name (Ctrl-C while that check shuts its early kernel down is 130)."""
    path = tmp_path / "month2.ipynb"
    path.write_text("not json yet {", encoding="utf-8")
    err = tmp_path / "err.txt"
    with err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "mlgrade", "check", "month2", str(path),
                                 "--watch"], stdout=subprocess.DEVNULL, stderr=stderr,
                                cwd=tmp_path, preexec_fn=default_signals)
        try:
            assert _wait_for(lambda: WATCHING in err.read_text(), 60)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    lines = err.read_text().splitlines()
    assert lines[0].startswith("error: ") and "not valid JSON" in lines[0]
    assert lines[1:] == [f"watching {path} for changes (Ctrl-C to stop)", "stopped watching"]


def test_every_starter_and_solution_is_recognised_as_its_own_month() -> None:
    from mlgrade.assignments import default_assignments_dir, list_assignments
    from mlgrade.selfcheck.choose import choose_questions
    from mlgrade.selfcheck.detect import looks_like_another, notebook_names, recognise

    months = [a for a in list_assignments(default_assignments_dir()) if not a.is_repository]
    for a in months:
        for path in (a.starter, SOLUTIONS / f"{a.name}.ipynb"):
            names = notebook_names(path)
            assert recognise(names, months) == a, path
            assert looks_like_another(names, a, months) is None
            others = [b for b in months if b.name != a.name]
            assert all(looks_like_another(names, b, months) == a for b in others)
    month2 = next(a for a in months if a.name == "month2")
    assert choose_questions(month2, ["Q3", "3", "q7"]) == ("q3", "q7")
    assert choose_questions(month2, None) is None
