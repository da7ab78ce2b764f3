"""The CLI end to end: real files, real kernels, exit codes as documented."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from tests.conftest import FIXTURE_NOTEBOOKS, REPO, SOLUTIONS, default_signals
from tests.timing import scaled
from typer.testing import CliRunner

from mlgrade.cli import app

runner = CliRunner()
SCHEMA = json.loads((REPO / "docs" / "result-schema.json").read_text())


def test_list_shows_month2_with_points() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert re.search(r"month2 .*Month 2.* 15", result.stdout)


def test_start_copies_the_starter_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["start", "month2"])
    assert first.exit_code == 0, first.stderr
    target = tmp_path / "month2.ipynb"
    assert target.read_bytes() == (REPO / "assignments/month2/month2.ipynb").read_bytes()
    target.write_text("my work", encoding="utf-8")
    second = runner.invoke(app, ["start", "month2"])
    assert second.exit_code == 2 and "already exists" in second.stderr
    assert target.read_text(encoding="utf-8") == "my work"
    forced = runner.invoke(app, ["start", "month2", "--force"])
    assert forced.exit_code == 0 and target.read_text(encoding="utf-8") != "my work"


@pytest.mark.kernel
def test_check_solution_json_validates_exit_0_and_file_untouched(tmp_path: Path) -> None:
    nb = tmp_path / "month2.ipynb"
    nb.write_bytes((SOLUTIONS / "month2.ipynb").read_bytes())
    os.utime(nb, (1_000_000, 1_000_000))
    digest = hashlib.sha256(nb.read_bytes()).hexdigest()
    result = runner.invoke(app, ["check", "month2", str(nb), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout holds only the JSON document
    jsonschema.validate(doc, SCHEMA)
    assert doc["score"] == doc["max_score"] == 15 and doc["status"] == "graded"
    assert hashlib.sha256(nb.read_bytes()).hexdigest() == digest
    assert nb.stat().st_mtime == 1_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["month2.ipynb"]


@pytest.mark.kernel
def test_starter_exit_1_and_default_path_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["start", "month2"]).exit_code == 0
    result = runner.invoke(app, ["check", "month2"])
    assert result.exit_code == 1
    assert "Score: 0 / 15" in result.stdout  # the report is the command's output
    assert "Score" not in result.stderr  # stderr: progress lines only


@pytest.mark.kernel
def test_same_notebook_same_seed_same_scores_and_seed_changes_inputs(tmp_path: Path) -> None:
    path = str(FIXTURE_NOTEBOOKS / "one_wrong_answer.ipynb")

    def scores(*extra: str) -> list[tuple[str, float, str]]:
        out = runner.invoke(app, ["check", "month2", path, "-f", "json", *extra])
        assert out.exit_code == 1, out.stderr
        return [(t["id"], t["earned"], t["feedback"]) for t in json.loads(out.stdout)["tests"]]

    assert scores() == scores()
    assert scores("--seed", "5") == scores("--seed", "5")


def _memorised_bayes_notebook(seed: int) -> object:
    """A learner who recorded the graders' inputs for one seed and hard-coded the answers."""
    import hashlib

    import numpy as np
    from tests.conftest import notebook_from_cells

    digest = hashlib.sha256(b"test_bayes_posterior").digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
    table = {}
    cases = [(rng.uniform(0.001, 0.5), rng.uniform(0.5, 0.999), rng.uniform(0.5, 0.999))
             for _ in range(5)]
    cases.append((float(rng.uniform(0.01, 0.2)), 0.9, 1.0))  # the graders' draws, in their order
    for prior, sens, spec in cases:
        table[round(prior, 9)] = sens * prior / (sens * prior + (1 - spec) * (1 - prior))
    return notebook_from_cells(
        f"ANSWERS = {table!r}",
        "def bayes_posterior(prior, sensitivity, specificity):\n"
        "    return ANSWERS.get(round(prior, 9), 0.5)",
    )


@pytest.mark.kernel
def test_hard_coded_answers_fail_when_the_lead_changes_the_seed(grade) -> None:
    from mlgrade.config import DEFAULT_SEED

    memorised = _memorised_bayes_notebook(DEFAULT_SEED)
    passed = lambda r: {t.id for t in r.tests if t.status == "passed"}  # noqa: E731
    assert "test_bayes_posterior" in passed(grade("month2", memorised))
    assert "test_bayes_posterior" not in passed(grade("month2", memorised, seed=99))


@pytest.mark.kernel
def test_save_executed_writes_outputs_but_not_over_the_input(tmp_path: Path) -> None:
    out = tmp_path / "executed.ipynb"
    src = SOLUTIONS / "month2.ipynb"
    result = runner.invoke(app, ["check", "month2", str(src), "--save-executed", str(out)])
    assert result.exit_code == 0
    executed = json.loads(out.read_text(encoding="utf-8"))
    texts = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("1.7" in t for t in texts)
    same = runner.invoke(app, ["check", "month2", str(src), "--save-executed", str(src)])
    assert same.exit_code == 2 and "must not be the notebook" in same.stderr


@pytest.mark.kernel
def test_no_kernel_is_an_environment_error_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGRADE_KERNEL_PYTHON", "/bin/false")
    result = runner.invoke(app, ["check", "month2", str(SOLUTIONS / "month2.ipynb")])
    assert result.exit_code == 3
    assert "could not start a Python kernel" in result.stderr
    assert "pip install ipykernel" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _kernels_under(tmp: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(tmp).encode() in cmdline and b"ipykernel" in cmdline:
                pids.append(int(proc.name))
    return pids


@pytest.mark.kernel
@pytest.mark.slow
def test_ctrl_c_shuts_the_kernel_down(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlgrade", "check", "month2",
         str(FIXTURE_NOTEBOOKS / "infinite_loop.ipynb"), "--cell-timeout", "60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_signals,
    )
    deadline = time.monotonic() + 30
    while not _kernels_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _kernels_under(tmp_path), "the kernel never started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 130, stderr
    time.sleep(0.5)
    assert _kernels_under(tmp_path) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("mlgrade-")]


@pytest.mark.parametrize(("argv", "guessed"), [
    (["check", "month2"], ("month2", None, "console")),
    (["check", "month2", "nb.ipynb", "-f", "json", "-o", "r.json", "-q", "q1", "--question",
      "q2"], ("month2", Path("nb.ipynb"), "json")),
    (["check", "month2", "nb.ipynb", "--format", "gradescope"], ("month2", Path("nb.ipynb"),
                                                                  "gradescope")),
    (["check", "month2", "nb.ipynb", "--seed", "3"], None),  # settings: the command's to make
    (["check", "month2", "nb.ipynb", "--watch"], None),
    (["check", "month2", "nb.ipynb", "--format=json"], None),
    (["check", "month2", "nb.ipynb", "-f"], None),
    (["check", "month2", "nb.ipynb", "--help"], None),
    (["check", "month2", "a.ipynb", "b.ipynb"], None),
    (["check"], None),
    (["--debug", "check", "month2"], None),
    (["grade", "month2", "folder"], None),
    ([], None),
])
def test_only_a_plain_check_command_line_is_guessed(argv: list[str], guessed: object) -> None:
    from mlgrade.commands.early import parse

    assert parse(argv) == guessed


@pytest.mark.kernel
def test_a_plain_check_starts_its_kernel_before_the_command_is_parsed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlgrade check NAME NOTEBOOK` starts the kernel before the CLI parses the command
    (mlgrade.commands.early) and the check takes that kernel: one kernel in all."""
    import mlgrade.prestart as prestart
    from mlgrade.commands import early

    spawned: list[object] = []
    spawn = prestart.PrestartedKernel.spawn

    def counted(kernel: prestart.PrestartedKernel) -> None:
        spawned.append(kernel)
        spawn(kernel)

    monkeypatch.setattr(prestart.PrestartedKernel, "spawn", counted)
    nb = tmp_path / "month2.ipynb"
    nb.write_bytes((SOLUTIONS / "month2.ipynb").read_bytes())
    argv = ["check", "month2", str(nb), "-f", "json"]
    try:
        early.start_kernel(argv)
        assert len(spawned) == 1  # before anything was parsed
        result = runner.invoke(app, argv)
    finally:
        early.forget_kernel()
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["score"] == 15
    assert len(spawned) == 1


@pytest.mark.kernel
def test_a_guessed_kernel_the_command_does_not_take_is_shut_down(tmp_path: Path) -> None:
    """A plain-looking check whose command is refused (an unknown format) started a kernel
    before parsing: it is shut down and its folder removed; the error is the usual line."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "mlgrade", "check", "month2",
                           str(SOLUTIONS / "month2.ipynb"), "-f", "bogus"],
                          env=env, capture_output=True, text=True, timeout=scaled(120))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert _kernels_under(tmp_path) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("mlgrade-")]


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = _command_paths(app)
    assert {"list", "start", "check"} <= set(commands)
    for path in commands:
        result = runner.invoke(app, [*path.split(), "--help"])
        assert result.exit_code == 0, path
        assert "Usage" in result.stdout
        assert f"mlgrade {path}" in readme, f"README does not mention `mlgrade {path}`"


def _command_paths(typer_app: object) -> list[str]:
    import typer.main

    group = typer.main.get_command(typer_app)
    paths: list[str] = []

    def walk(cmd: object, prefix: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            if getattr(sub, "commands", None):
                walk(sub, f"{prefix}{name} ")
            else:
                paths.append(f"{prefix}{name}")

    walk(group, "")
    return paths
