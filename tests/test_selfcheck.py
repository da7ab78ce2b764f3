"""``mlgrade.check()`` inside a real IPython kernel: it grades the kernel's current state with
the CLI's graders, returns control when a learner function loops forever, shows an HTML and a
plain-text report, and agrees with ``mlgrade check`` test by test on every month's solution,
starter and a known-wrong mutant."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time
from pathlib import Path

import nbformat
import pytest
from tests.conftest import SOLUTIONS, assignment, graded_once, mutant, solution
from tests.kernel_support import LiveKernel, live_kernel, verdicts
from tests.timing import scaled

pytestmark = pytest.mark.kernel

LOOPING_SIGMOID = "def sigmoid(z):\n    while True:\n        z = z + 1\n"
HALF_GRADIENT = ("import numpy as np\n\ndef mse_gradient(X, y, w):\n"
                 "    return (1.0 / len(y)) * X.T @ (X @ w - y)\n")


def _mutant(month: str) -> nbformat.NotebookNode:
    """The month's first known-wrong solution (graders/<month>/mutants.toml)."""
    from mlgrade.mutants import load_mutants

    first = load_mutants(assignment(month).graders).mutants[0]
    return mutant(month, {r.cell: r.source for r in first.replacements})


def _notebook(month: str, kind: str) -> nbformat.NotebookNode:
    if kind == "solution":
        return solution(month)
    if kind == "starter":
        return nbformat.read(assignment(month).starter, as_version=4)
    return _mutant(month)


MONTHS = [f"month{n}" for n in range(1, 7)]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["solution", "starter", "mutant"])
@pytest.mark.parametrize("month", MONTHS)
def test_in_notebook_verdicts_equal_mlgrade_check(month: str, kind: str, tmp_path: Path) -> None:
    a = dataclasses.replace(assignment(month), solution=SOLUTIONS / f"{month}.ipynb")
    nb = _notebook(month, kind)
    # the official run and the learner's kernel are independent: overlap them (CI has 2 cores);
    # the official verdict is the one the month's grader tests read (graded once a session)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(graded_once, month, nb, tmp_path, assignment_=a)
        with live_kernel(tmp_path / "learner", a) as kernel:
            kernel.run_notebook(nb)
            # the assignment is recognised from the names the notebook defines (a starter's
            # stubs define them too)
            mine = kernel.check(None)
        official = running.result()
    assert mine["assignment"] == month and mine["seed"] == official.seed
    assert verdicts(mine["tests"]) == verdicts([dataclasses.asdict(t) for t in official.tests])
    if kind == "solution":
        assert mine["score"] == mine["max_score"] > 0
    if kind == "starter":
        assert mine["score"] == 0


@pytest.fixture(scope="module")
def month2_kernel(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One learner kernel for month 2 with a sigmoid that never returns; call timeout 2 s."""
    a = assignment("month2")
    nb = mutant("month2", {"def sigmoid": LOOPING_SIGMOID})
    with live_kernel(tmp_path_factory.mktemp("m2"), a, env={"MLGRADE_CALL_TIMEOUT": "2"}) as kernel:
        kernel.run_notebook(nb)
        yield kernel


def test_a_learner_function_that_never_returns_times_out_and_control_returns(month2_kernel) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    doc = month2_kernel.check("q7")
    assert time.monotonic() - start < scaled(30)
    (sigmoid,) = doc["tests"]
    assert sigmoid["status"] == "failed"
    assert "took longer than 2 s and was stopped" in sigmoid["feedback"]
    # the kernel is free again and the next check works; the state it grades is the current one
    assert [t["status"] for t in month2_kernel.check("Q3")["tests"]] == ["passed"]
    assert month2_kernel.run("x_after = 41 + 1\nprint(x_after)").stdout.strip() == "42"


def test_one_question_other_questions_and_the_current_state(month2_kernel) -> None:  # type: ignore[no-untyped-def]
    doc = month2_kernel.check(["q2", "3"])
    assert {t["question"] for t in doc["tests"]} == {"q2", "q3"}
    assert "self-check" in doc["label"] and "mlgrade check month2" in doc["label"]
    # redefine a function in the kernel: the next check sees the change without a re-run
    month2_kernel.run(HALF_GRADIENT)
    (gradient,) = month2_kernel.check("q3")["tests"]
    assert gradient["status"] == "failed" and "factor of 2" in gradient["feedback"]
    month2_kernel.run(solution("month2").cells[[c.source for c in solution("month2").cells]
                                                .index(next(c.source for c in solution("month2").cells
                                                            if "def mse_gradient" in c.source))].source)
    assert month2_kernel.check("q3")["tests"][0]["status"] == "passed"


def test_a_function_that_overran_once_is_not_waited_for_again(month2_kernel) -> None:  # type: ignore[no-untyped-def]
    """Q2's two tests both call dot_product: once it ran past the limit, the second test fails
    at once instead of waiting out another call timeout."""
    month2_kernel.run("def dot_product(a, b):\n    while True:\n        pass\n")
    first, second = month2_kernel.check("q2")["tests"]
    assert (first["status"], second["status"]) == ("failed", "failed")
    assert "took longer than 2 s and was stopped" in first["feedback"]
    assert second["feedback"].startswith("`dot_product(...)` was not run again: on an earlier "
                                         "test it took longer than 2 s")
    cells = solution("month2").cells
    month2_kernel.run(next(c.source for c in cells if "def dot_product" in c.source))
    assert [t["status"] for t in month2_kernel.check("q2")["tests"]] == ["passed", "passed"]


def test_report_is_html_and_plain_text_and_graders_stay_out_of_the_kernel(month2_kernel) -> None:  # type: ignore[no-untyped-def]
    shown = month2_kernel.run("import mlgrade\nmlgrade.check('q1')")
    assert shown.status == "ok"
    (bundle,) = shown.displays
    # one output, updated in place: "loading graders", "test 1 of 1" while the graders ran,
    # then the report
    assert [o.get("updates") for o in shown.outputs if "data" in o] == [3]
    assert "<table>" in bundle["text/html"] and "self-check" in bundle["text/html"]
    assert "Q1" in bundle["text/plain"] and "self-check" in bundle["text/plain"]
    assert "A weighted-sum prediction" in bundle["text/plain"]
    magic = month2_kernel.run("%load_ext mlgrade\n%mlgrade check q1")
    assert magic.status == "ok" and "Q1" in magic.displays[0]["text/plain"]
    modules = month2_kernel.run("import sys\nprint(sorted(m for m in sys.modules "
                                "if 'test_month' in m or m == 'pytest'))").stdout.strip()
    assert modules == "[]"


def graders_started_by(kernel: LiveKernel) -> list[int]:
    """The self-check grader processes the kernel has started (its children)."""
    parent = str(kernel.km.provisioner.process.pid)  # type: ignore[union-attr]
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[1] == parent and b"mlgrade.selfcheck.grader" in cmdline:
            found.append(int(entry))
    return found


def test_import_starts_the_grader_and_the_first_check_shows_progress(tmp_path: Path) -> None:
    with live_kernel(tmp_path, assignment("month2")) as kernel:
        kernel.run_notebook(solution("month2"))
        assert graders_started_by(kernel) == []
        assert kernel.run("import mlgrade").status == "ok"
        started = graders_started_by(kernel)
        assert len(started) == 1  # in the background, before any check
        first = kernel.run("mlgrade.check('q1')")
        (out,) = [o for o in first.outputs if "data" in o]
        lines = [shown["text/plain"].splitlines()[0] for shown in out["shown"]]
        assert lines[:3] == ["mlgrade: starting the grader…", "mlgrade: loading graders…",
                             "mlgrade: checking, test 1 of 1: `prediction` is the weighted sum of the features"]
        assert "Q1" in out["data"]["text/plain"] and len(lines) == 4  # then the report
        again = kernel.run("mlgrade.check('q1')")
        (out,) = [o for o in again.outputs if "data" in o]
        assert out["shown"][0]["text/plain"] == "mlgrade: checking…"  # the grader is up
        assert graders_started_by(kernel) == started  # the same process serves every check


def test_a_grading_kernel_starts_no_grader_on_import(tmp_path: Path) -> None:
    with live_kernel(tmp_path, env={"MLGRADE_KERNEL": "1"}) as kernel:
        assert kernel.run("import mlgrade").status == "ok"
        assert graders_started_by(kernel) == []


def test_usage_mistakes_are_one_line(month2_kernel) -> None:  # type: ignore[no-untyped-def]
    # its own import: under xdist this test may be the first on its worker to use the kernel
    shown = month2_kernel.run("import mlgrade\nmlgrade.check('q42')")
    assert shown.status == "ok"
    (bundle,) = shown.displays
    assert bundle["text/plain"].startswith("mlgrade: month2 has no question 'q42'")
    assert len(bundle["text/plain"].splitlines()) == 1
    wrong = month2_kernel.run("mlgrade.check('q1', assignment='mnth2', display=False)")
    assert wrong.error is not None and wrong.error["ename"] == "SelfCheckError"
    assert "did you mean 'month2'" in wrong.error["evalue"]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _wait_until_looping(kernel: LiveKernel) -> None:
    """Until the check's grader process is up and the kernel has spent a further second of CPU
    after that (the looping sigmoid burns it; a kernel waiting on its grader does not)."""
    deadline = time.monotonic() + scaled(60)
    pid = kernel.km.provisioner.process.pid  # type: ignore[union-attr]
    while not graders_started_by(kernel):
        assert time.monotonic() < deadline, "the check started no grader process"
        time.sleep(0.05)
    start = _cpu_seconds(pid)
    while _cpu_seconds(pid) - start < 1.0:
        assert time.monotonic() < deadline, "the kernel never ran the looping sigmoid"
        time.sleep(0.05)


def test_the_learners_own_interrupt_stops_the_check(tmp_path: Path) -> None:
    a = assignment("month2")
    nb = mutant("month2", {"def sigmoid": LOOPING_SIGMOID})
    with live_kernel(tmp_path, a, env={"MLGRADE_CALL_TIMEOUT": "60"}) as kernel:
        kernel.run_notebook(nb)
        msg_id = kernel.kc.execute("import mlgrade\nmlgrade.check('q7', display=False)")
        _wait_until_looping(kernel)  # the grader is now waiting on the looping sigmoid
        kernel.km.interrupt_kernel()
        reply = kernel.kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:  # earlier requests' replies
            reply = kernel.kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        # and the next check starts a fresh grader process
        assert kernel.check("q1")["tests"][0]["status"] == "passed"
