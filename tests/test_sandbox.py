"""The sandbox tiers: policy, launcher, canary, reaper, and the kernel inside each tier."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from tests.probes import BUBBLEWRAP, requires
from tests.security.redteam_support import TIERS, make_sandbox, redteam

from mlgrade.config import Settings, resolve_settings
from mlgrade.errors import ExitCode, SandboxUnavailableError
from mlgrade.pipeline import check_notebook
from mlgrade.sandbox import (
    UNISOLATED_NOTICE,
    NamespacedSandbox,
    NoSandbox,
    ProcessSandbox,
    choose_sandbox,
    launcher_argv,
)
from mlgrade.sandbox import namespaced as namespaced_module
from mlgrade.sandbox.canary import Canary
from mlgrade.sandbox.process import LAUNCH_SOURCE, can_switch_uid
from mlgrade.sandbox.slots import SlotLease, kill_until_gone, tasks_of_uid

AS_ROOT = os.geteuid() == 0
HONEST = [
    "import numpy as np\nanswer = 42.0",
    "def double(x):\n    return 2 * np.asarray(x, dtype=float)",
    "def save_result(path, x):\n    np.save(path, np.asarray(x, dtype=float) ** 2)\n"
    "    return path",
    "def predict(X):\n    return (np.asarray(X)[:, 0] > 0).astype(int)",
]


def _notebook(tmp_path: Path, *cells: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    path = tmp_path / f"nb{len(list(tmp_path.iterdir()))}.ipynb"
    nbformat.write(nb, path)
    return path


# -- policy ---------------------------------------------------------------------------------
def test_none_must_be_explicit_and_is_allowed_for_both_purposes() -> None:
    for purpose in ("check", "grade"):
        assert isinstance(choose_sandbox(Settings(isolation="none"), purpose), NoSandbox)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux policy")
def test_grade_refuses_the_process_tier_with_a_how_to() -> None:
    with pytest.raises(SandboxUnavailableError) as info:
        choose_sandbox(Settings(isolation="process"), "grade")
    assert info.value.exit_code == ExitCode.ENVIRONMENT
    message = str(info.value)
    assert "bubblewrap" in message and "--isolation none" in message and "\n" not in message


def test_without_bubblewrap_check_falls_back_and_grade_refuses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    namespaced_module.namespaced_problem.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        problem = namespaced_module.namespaced_problem()
        assert problem == "bubblewrap (bwrap) is not installed"
        monkeypatch.setattr("mlgrade.sandbox.namespaced_problem", lambda: problem)
        assert type(choose_sandbox(Settings(), "check")) is ProcessSandbox
        for isolation, purpose in (("auto", "grade"), ("namespaced", "check")):
            with pytest.raises(SandboxUnavailableError, match="not installed"):
                choose_sandbox(Settings(isolation=isolation), purpose)
    finally:
        namespaced_module.namespaced_problem.cache_clear()


@requires(BUBBLEWRAP)
def test_best_tier_is_namespaced_with_ipc_and_a_slot() -> None:
    sandbox = choose_sandbox(Settings(), "grade", slot=5)
    assert isinstance(sandbox, NamespacedSandbox) and sandbox.slot == 5
    assert choose_sandbox(Settings(), "check").tier == "namespaced"


@pytest.mark.skipif(not AS_ROOT, reason="uid leases are for root")
def test_slot_uids_are_exclusive() -> None:
    first, second = SlotLease(slot=11), SlotLease(slot=11)
    try:
        uid_a, uid_b = first.acquire(), second.acquire()
        assert uid_a != uid_b and uid_a != 0 and uid_b != 0
        assert (uid_a - uid_b) % 64 == 0  # the same slot, further along the range
    finally:
        first.release()
        second.release()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_thread_count_for_the_process_limit() -> None:
    mine = tasks_of_uid(os.getuid())
    assert mine is not None and mine >= 1
    assert tasks_of_uid(2**31 - 7) == 0


def test_quarantine_when_something_will_not_die() -> None:
    with pytest.raises(SandboxUnavailableError, match="quarantined"):
        kill_until_gone(lambda: [2**22 + 12345], "a test", wait_s=0.1)


# -- launcher ----------------------------------------------------------------------------
def test_launch_source_survives_kernel_command_templating() -> None:
    # jupyter_client replaces {name} in every argv item; the launcher source is one of them
    assert re.findall(r"\{([A-Za-z0-9_]+)\}", LAUNCH_SOURCE) == []


def test_launcher_sets_limits_scrubs_and_drops_privileges(tmp_path: Path) -> None:
    probe = ("import json, os, resource, signal\nprint(json.dumps({'as': resource.getrlimit("
             "resource.RLIMIT_AS)[0], 'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[0], "
             "'fsize': resource.getrlimit(resource.RLIMIT_FSIZE)[0], 'core': resource.getrlimit("
             "resource.RLIMIT_CORE)[0], 'uid': os.getresuid(), 'groups': os.getgroups(), "
             "'foo': os.environ.get('FOO'), "
             "'sigint': int(signal.getsignal(signal.SIGINT) == signal.SIG_IGN), "
             "'nnp': [l for l in open('/proc/self/status') if l.startswith('NoNewPrivs')]}))")
    owned = tmp_path / "owned"
    owned.write_text("x")
    options = ["--as-mb", "900", "--nofile", "99", "--fsize-mb", "3", "--unset", "FOO",
               "--sigint", "ign"]
    switch = can_switch_uid()  # root, and the interpreter is reachable by another uid
    if switch:
        options += ["--uid", "61999", "--gid", "61999", "--own", str(owned)]
    done = subprocess.run(launcher_argv(*options) + [sys.executable, "-I", "-c", probe],
                          capture_output=True, text=True, env={**os.environ, "FOO": "secret"},
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-500:]
    seen = json.loads(done.stdout)
    assert seen["as"] == 900 * 2**20 and seen["nofile"] == 99 and seen["fsize"] == 3 * 2**20
    assert seen["core"] == 0 and seen["foo"] is None and seen["sigint"] == 1
    assert seen["nnp"] == ["NoNewPrivs:\t1\n"]
    if switch:
        assert seen["uid"] == [61999, 61999, 61999] and seen["groups"] == []
        assert owned.stat().st_uid == 61999


@pytest.mark.skipif(not AS_ROOT, reason="the uid switch is root's")
def test_launcher_fails_closed_when_it_cannot_contain(tmp_path: Path) -> None:
    done = subprocess.run(launcher_argv("--uid", "61999", "--own", str(tmp_path / "missing"))
                          + ["/usr/bin/env", "true"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "could not contain the kernel" in done.stderr


# -- canary ------------------------------------------------------------------------------
def test_canary_reads_only_its_own_verdict() -> None:
    canary = Canary(frozenset({"no_tokens"}))
    ok = [{"output_type": "stream", "name": "stdout", "text": "mlgrade-canary:[]\n"}]
    assert canary.problems(ok, "ok") == []
    assert canary.problems(ok, "timeout") == ["the canary cell did not finish (timeout)"]
    assert canary.problems([], "ok") == ["the canary gave no answer"]
    bad = [{"output_type": "stream", "name": "stdout",
            "text": 'mlgrade-canary:[["no_tokens", "variables GITHUB_TOKEN"]]\n'}]
    assert canary.problems(bad, "ok") == [
        "no secrets or CI variables in the environment: variables GITHUB_TOKEN"]


class _LyingProcess(ProcessSandbox):
    def canary(self) -> Canary:  # promises that /usr is hidden: false in every tier
        return Canary(frozenset({"hidden"}), ("/usr",))


class _LyingNamespaced(NamespacedSandbox):
    def canary(self) -> Canary:
        return Canary(frozenset({"hidden"}), ("/usr",))


@pytest.mark.kernel
@pytest.mark.parametrize("tier", TIERS)
def test_a_failed_canary_stops_before_learner_code(tier: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "learner-code-ran"
    path = _notebook(tmp_path, f"open({str(sentinel)!r}, 'w').close()", *HONEST)
    sandbox = _LyingNamespaced() if tier == "namespaced" else _LyingProcess()
    with pytest.raises(SandboxUnavailableError, match="self-check.*/usr is visible"):
        check_notebook(path, redteam(), resolve_settings({}, redteam().limits, environ={}),
                       sandbox=sandbox)
    assert not sentinel.exists()


# -- kernels in each tier ----------------------------------------------------------------
@pytest.mark.kernel
@pytest.mark.parametrize("tier", TIERS)
def test_tier_grades_and_interrupts(tier: str, tmp_path: Path) -> None:
    """Full marks in the tier, and the watchdog's SIGINT reaches the kernel (no restart)."""
    path = _notebook(tmp_path, "import time\nwhile True:\n    time.sleep(0.01)", *HONEST)
    a = redteam()
    settings = resolve_settings({"cell_timeout": 2}, a.limits, environ={})
    result = check_notebook(path, a, settings, sandbox=make_sandbox(tier)).result
    assert result.isolation in (tier, f"{tier}+cgroup") and result.score == 4 and result.notices == ()
    assert [e.ename for e in result.execution.errors] == ["Timeout"]
    assert result.execution.kernel_restarts == 0


@pytest.mark.kernel
def test_unisolated_runs_are_stamped(tmp_path: Path) -> None:
    path = _notebook(tmp_path, *HONEST)
    a = redteam()
    settings = resolve_settings({"isolation": "none"}, a.limits, environ={})
    result = check_notebook(path, a, settings).result
    assert result.isolation == "none" and result.score == 4
    assert result.notices[0] == UNISOLATED_NOTICE
    assert result.to_dict()["notices"][0].startswith("UNISOLATED")
