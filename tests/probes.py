"""What the machine offers the tests, probed independently of mlgrade's own detection.

Each probe answers ``None`` (it works) or why not, in one line. :func:`requires` turns a probe
into a mark: on a developer's machine a missing tool skips the test with that reason; with
``CI=true`` it fails it with that reason (CI installs everything, so a missing tool there, or a
bug in the probe's install step, is never a silent skip). The probes run the tools directly
(``bwrap``, cgroup files, ``chromium``, ``python3.10``), never mlgrade's ``namespaced_problem``
or cgroup plan, so a bug in those fails tests/test_probes.py instead of skipping everything.

The CI failure needs this module loaded as a plugin: ``pytest_plugins = ["tests.probes"]`` in
tests/conftest.py (or ``-p tests.probes``).
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

MARK = "missing_in_ci"


def in_ci() -> bool:
    """``CI=true`` (GitHub Actions and .ci/run set it): everything the suite needs is installed."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class Probe:
    """A named check of the machine; ``how`` says how to get what is missing."""

    name: str
    check: Callable[[], str | None]
    how: str

    def problem(self) -> str | None:
        return _cached(self.check)


@functools.cache
def _cached(check: Callable[[], str | None]) -> str | None:
    try:
        return check()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the probe itself failed ({exc})"


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1][:200] if lines else f"exit {done.returncode}"


# -- bubblewrap ------------------------------------------------------------------------------
def _bubblewrap() -> str | None:
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not on PATH"
    done = _run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"])
    return None if done.returncode == 0 else f"`bwrap --unshare-all ... true` failed: {_last_line(done)}"


# -- cgroups ---------------------------------------------------------------------------------
def _own_cgroups() -> dict[str, str]:
    """``/proc/self/cgroup``: controller (``"memory"``, ``"pids"``, ``""`` for v2) -> path."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _cgroup_folder(controller: str) -> Path | None:
    """The folder of this process's own cgroup that carries ``controller`` ("" for v2), from the
    mount table (a mount may show a sub-tree: its root field is stripped from our path)."""
    own = _own_cgroups().get(controller)
    if own is None:
        return None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        fstype = tail[0] if tail else ""
        if controller == "" and fstype != "cgroup2":
            continue
        if controller and (fstype != "cgroup" or controller not in tail[2].split(",")):
            continue
        root, point = fields[3], fields[4]
        if root != "/" and not (own + "/").startswith(root.rstrip("/") + "/"):
            continue
        folder = Path(point) / own[len(root.rstrip("/")):].lstrip("/")
        if folder.is_dir():
            return folder
    return None


def _cgroups() -> str | None:
    """A child cgroup under our own, with a memory limit and a pids limit, that a process can
    join: what mlgrade's cgroup layer makes per kernel (cgroup v2 where our cgroup delegates
    memory and pids, else the v1 memory and pids hierarchies)."""
    if not sys.platform.startswith("linux"):
        return "cgroups need Linux"
    v2 = _cgroup_folder("")
    delegated = (v2 / "cgroup.subtree_control").read_text().split() if v2 else []
    where: dict[str, Path] = {}
    for controller in ("memory", "pids"):
        folder = v2 if controller in delegated else _cgroup_folder(controller)
        if folder is None:
            return (f"no cgroup with the {controller} controller under this process's own "
                    f"(cgroup v2 delegates {delegated or 'nothing'} here)")
        if not os.access(folder, os.W_OK):
            return f"{folder} (this process's cgroup for {controller}) is not writable"
        where[controller] = folder
    name = f"probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    made: list[Path] = []
    try:
        for folder in where.values():
            child = folder / name
            if child not in made:
                child.mkdir()
                made.append(child)
        memory = where["memory"] / name
        limit = "memory.max" if memory.parent == v2 else "memory.limit_in_bytes"
        (memory / limit).write_text(str(64 * 2**20))
        (where["pids"] / name / "pids.max").write_text("16")
        procs = " ".join(f"{c}/cgroup.procs" for c in made)
        joined = _run(["/bin/sh", "-c", f'for f in {procs}; do echo $$ > "$f" || exit 9; done; '
                       "cat /proc/self/cgroup"])
        if joined.returncode != 0 or name not in joined.stdout:
            return f"a process cannot join a new cgroup: {_last_line(joined)}"
    except OSError as exc:
        return f"cannot make a limited child cgroup ({exc})"
    finally:
        for child in reversed(made):
            child.rmdir()
    return None


# -- Chromium --------------------------------------------------------------------------------
def chromium_paths() -> tuple[str, str] | None:
    """(browser, chromedriver) on PATH, if both are."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _chromium() -> str | None:
    found = chromium_paths()
    if found is None:
        return "chromium and chromedriver are not both on PATH"
    for argv in ([found[0], "--headless", "--version"], [found[1], "--version"]):
        done = _run(argv)
        if done.returncode != 0:
            return f"`{' '.join(argv)}` failed: {_last_line(done)}"
    return None


# -- a second Python: 3.10 -------------------------------------------------------------------
def _python310_candidates() -> list[str]:
    found = [shutil.which("python3.10") or ""]
    roots = [os.path.expanduser("~/.pyenv")]
    if shutil.which("pyenv"):
        done = _run(["pyenv", "root"], timeout=30)
        roots.insert(0, done.stdout.strip())
    for root in filter(None, roots):
        found += sorted(glob.glob(os.path.join(root, "versions", "3.10*", "bin", "python3.10")), reverse=True)
    return list(dict.fromkeys(filter(None, found)))


@functools.cache
def python310() -> Path | None:
    """A Python 3.10 with a prefix of its own (pyenv's, actions/setup-python's): its real
    executable, asked of itself (a pyenv shim is a script). A system Python in /usr is not used:
    the Gradescope test copies the interpreter's whole prefix."""
    for candidate in _python310_candidates():
        done = _run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 10), "
                     "sys.executable, sys.base_prefix)"], timeout=30)
        ok, _, rest = done.stdout.strip().partition(" ")
        executable, _, prefix = rest.partition(" ")
        if done.returncode == 0 and ok == "True" and prefix not in ("/usr", "/usr/local"):
            return Path(executable)
    return None


def _python310() -> str | None:
    if python310() is not None:
        return None
    tried = _python310_candidates()
    return ("no Python 3.10 with its own prefix (looked at `pyenv root`/versions/3.10*, "
            f"~/.pyenv/versions/3.10*, python3.10 on PATH{': ' + ', '.join(tried) if tried else ''})")


BUBBLEWRAP = Probe("bubblewrap", _bubblewrap,
                   "apt-get install bubblewrap; allow unprivileged user namespaces or run as root")
CGROUPS = Probe("cgroups", _cgroups, "run as root, or in a cgroup that delegates memory and pids")
CHROMIUM = Probe("chromium", _chromium, "apt-get install chromium chromium-driver")
PYTHON310 = Probe("python3.10", _python310, "pyenv install 3.10, or actions/setup-python 3.10")


def reason(probe: Probe) -> str:
    problem = probe.problem()
    assert problem is not None
    ci = "; CI=true, so this fails instead of skipping" if in_ci() else ""
    return f"{probe.name} unavailable: {problem} ({probe.how}){ci}"


def requires(*probes: Probe) -> pytest.MarkDecorator:
    """A mark for a test (or a ``pytest.param``) that needs ``probes``: nothing if they all
    work, else a skip with the first one's reason, or under ``CI=true`` a failure."""
    missing = next((p for p in probes if p.problem() is not None), None)
    if missing is None:
        return pytest.mark.skipif(False, reason="")
    if in_ci():
        return getattr(pytest.mark, MARK)(reason(missing))
    return pytest.mark.skipif(True, reason=reason(missing))


def require(probe: Probe) -> None:
    """Inside a test or fixture: skip (or under ``CI=true`` fail) unless ``probe`` works."""
    if probe.problem() is None:
        return
    if in_ci():
        pytest.fail(reason(probe), pytrace=False)
    pytest.skip(reason(probe))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}(reason): something the test needs is missing under CI=true")


def pytest_runtest_setup(item: pytest.Item) -> None:
    mark = item.get_closest_marker(MARK)
    if mark is not None:
        pytest.fail(mark.args[0], pytrace=False)
