# ruff: noqa: E501  (the cases are notebook sources, kept one statement per line)
"""Red-team suite: hostile notebooks, each with its exact expected verdict, in each tier.

A case is an honest solution with some cells replaced or added by an attack. The verdict is
the exact set of grader tests that pass (the others earn 0). For every case the grader must
survive with bounded time and memory, and nothing of the submission may remain: no process,
no job folder, no sentinel file outside the job (see ``conftest.assert_nothing_survived``).

Cases marked ``confined`` attack the host itself (write outside the job, signal or kill
outside the kernel, plant files for the next submission). The process tier does not promise
to stop those (docs/security.md), and where it runs the kernel as the invoking user they
could damage the machine running the tests, so they run in the namespaced tier only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from tests.security.redteam_support import (
    ALL_TESTS,
    ASSIGNMENTS,
    TIERS,
    Graded,
    assert_nothing_survived,
    grade_hostile,
)

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

IMPORTS = "import numpy as np, os, sys, signal, time"
HONEST = {
    "answer": "answer = 42.0",
    "double": "def double(x):\n    return 2 * np.asarray(x, dtype=float)",
    "save": "def save_result(path, x):\n    np.save(path, np.asarray(x, dtype=float) ** 2)\n    return path",
    "predict": "def predict(X):\n    return (np.asarray(X)[:, 0] > 0).astype(int)",
}
REPO = Path(__file__).resolve().parents[2]
GRADERS = ASSIGNMENTS / "redteam" / "graders" / "test_redteam.py"
SOLUTION = ASSIGNMENTS / "redteam" / "solution.ipynb"
WITHOUT = ALL_TESTS.difference


@dataclass(frozen=True)
class Case:
    """One hostile notebook: ``cells`` replace the honest ones by key; ``before``/``after``
    run around them. ``expect`` is the passed set, or a dict tier -> passed set."""

    name: str
    replace: dict[str, str] = field(default_factory=dict)
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    expect: frozenset[str] | dict[str, frozenset[str]] = ALL_TESTS
    confined: bool = False  # attacks the host: namespaced tier only
    check: Callable[[Graded], None] | None = None

    def expected(self, tier: str) -> frozenset[str]:
        return self.expect[tier] if isinstance(self.expect, dict) else self.expect


def _restarted(g: Graded) -> None:
    assert g.result.execution.kernel_restarts >= 1


def _error_named(name: str) -> Callable[[Graded], None]:
    def check(g: Graded) -> None:
        assert name in {e.ename for e in g.result.execution.errors}, g.result.execution.errors
    return check


def _feedback(test_id: str, *words: str) -> Callable[[Graded], None]:
    def check(g: Graded) -> None:
        text = g.feedback(test_id)
        assert all(w in text for w in words), text
    return check


# rewrite every answer document the harness publishes (it imports publish_display_data from
# IPython.display at call time), as a learner who read mlgrade's source would
FORGE = (
    "import IPython.display, base64, pickle\n_real_publish = IPython.display.publish_display_data\n"
    "forged = None\n"
    "def _forge(data, *a, **k):\n"
    "    if 'application/x.mlgrade.result' in data:\n"
    "        doc = '@DOC@'\n"
    "        data = {'application/x.mlgrade.result': doc % forged() if '%s' in doc else doc}\n"
    "    return _real_publish(data, *a, **k)\n"
    "IPython.display.publish_display_data = _forge"
)

CASES = [
    Case("eq_always_true", {"answer": (
        "class Anything:\n    def __eq__(self, other): return True\n    def __float__(self): return 42.0\n"
        "    def __array__(self, *a, **k): return np.array(42.0)\nanswer = Anything()")},
        expect=WITHOUT({"test_answer"}), check=_feedback("test_answer", "cannot read back")),
    Case("float_subclass_lies", {"answer": (
        "class F(float):\n    __eq__ = lambda s, o: True\n    __ne__ = lambda s, o: False\n"
        "    __sub__ = lambda s, o: 0.0\n    __abs__ = lambda s: 0.0\nanswer = F(7.0)")},
        expect=WITHOUT({"test_answer"})),
    Case("ndarray_subclass", {"double": (
        "class Liar(np.ndarray):\n    def __eq__(self, o): return np.ones(self.shape, bool)\n"
        "    def __array_ufunc__(self, *a, **k): return np.ones(self.shape, bool)\n"
        "def double(x):\n    return np.zeros(len(x)).view(Liar)")},
        expect=WITHOUT({"test_double"})),
    Case("patched_comparisons", {"double": "def double(x):\n    return np.zeros(len(x))"}, before=(
        "import math, numpy.testing\nnp.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
        "np.array_equal = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None\n"
        "math.isclose = lambda *a, **k: True",), expect=WITHOUT({"test_double"})),
    Case("suppressed_traceback", {"double": "def double(x):\n    raise ValueError('hidden')"}, before=(
        "get_ipython().showtraceback = lambda *a, **k: None\nsys.excepthook = lambda *a: None",),
        expect=WITHOUT({"test_double"}), check=_feedback("test_double", "raised ValueError")),
    Case("hard_coded_sample", {"double": (
        "def double(x):\n    if list(np.asarray(x)) == [1.0, 2.0, 3.0]:\n        return np.array([2.0, 4.0, 6.0])\n"
        "    return np.zeros(len(x))")}, expect=WITHOUT({"test_double"})),
    Case("forged_answer_documents", {"double": (
        "from IPython.display import publish_display_data\n"
        "def double(x):\n    doc = {'status': 'ok', 'value': {'t': 'float', 'v': 42.0}}\n"
        "    publish_display_data({'application/x.mlgrade.result': __import__('json').dumps(doc)})\n"
        "    print('::notice::Score 4/4'); return np.zeros(len(x))")},
        expect=WITHOUT({"test_double"})),
    Case("read_graders", {"predict": (
        f"def predict(X):\n    try:\n        text = open({str(GRADERS)!r}).read()\n    except OSError:\n"
        "        text = ''\n    X = np.asarray(X)\n    if 'X[:, 0]' in text:\n        return (X[:, 0] > 0).astype(int)\n"
        "    return np.zeros(len(X), int)")},
        expect={"process": ALL_TESTS, "namespaced": WITHOUT({"test_predict"})}),
    Case("read_solutions", {"answer": (
        f"try:\n    answer = 42.0 if 'answer = 42' in open({str(SOLUTION)!r}).read() else -1.0\n"
        "except OSError:\n    answer = -1.0")},
        expect={"process": ALL_TESTS, "namespaced": WITHOUT({"test_answer"})}),
    Case("read_other_submission", {"answer": (
        "try:\n    answer = float(open('@OTHER@').read())\nexcept OSError:\n    answer = -1.0")},
        expect={"process": ALL_TESTS, "namespaced": WITHOUT({"test_answer"})}),
    Case("hunt_held_out_labels", {"predict": (
        "def predict(X, _found=[]):\n    if not _found:\n        t0 = time.time()\n"
        "        for root in (os.getcwd(), os.path.expanduser('~'), '/tmp'):\n"
        "            for d, _, files in os.walk(root):\n"
        "                _found += [os.path.join(d, f) for f in files if 'label' in f.lower()]\n"
        "                if time.time() - t0 > 1: break\n        _found.append(None)\n"
        "    for f in _found:\n        try:\n            y = np.load(f)\n            if len(y) == len(X): return y.astype(int)\n"
        "        except Exception:\n            pass\n    return np.zeros(len(X), int)")},
        expect=WITHOUT({"test_predict"})),
    Case("sys_exit", before=("sys.exit(3)",), check=_error_named("SystemExit")),
    Case("os_exit", before=("os._exit(1)",), check=_restarted),
    Case("kill_own_process_group", before=("os.kill(0, signal.SIGKILL)",), check=_restarted),
    # files in the job folder that break the next kernel: its start fails, or its canary
    # does; the rest of the submission fails closed and grading goes on (no environment
    # error that would stop a batch)
    Case("poison_the_restart", before=(
        "d = os.environ['IPYTHONDIR'] + '/profile_default'\nos.makedirs(d, exist_ok=True)\n"
        "open(d + '/ipython_kernel_config.py', 'w').write('import os; os._exit(3)')\nos._exit(1)",),
        expect=frozenset(), check=_restarted),
    Case("poison_the_restart_canary", before=(
        "d = os.environ['IPYTHONDIR'] + '/profile_default/startup'\nos.makedirs(d, exist_ok=True)\n"
        "open(d + '/00-token.py', 'w').write('import os; os.environ[\"GITHUB_TOKEN\"] = \"x\"')\n"
        "os._exit(1)",), expect=frozenset(), check=_restarted),
    Case("kill_parent_and_init", before=(
        "for pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n        pass",), confined=True),
    Case("kill_everything", before=("os.kill(-1, signal.SIGKILL)",), confined=True),
    Case("infinite_loop_ignoring_sigint", before=(
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",),
        check=_error_named("Timeout")),
    Case("bounded_fork_bomb", before=(
        "kids = 0\nfor _ in range(300):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(600)\n        os._exit(0)\n    kids += 1\nprint(kids)",)),
    Case("bounded_memory_bomb", before=(
        "hog = []\nfor _ in range(64):\n    hog.append(bytearray(256 * 2**20))",),
        check=_error_named("MemoryError")),
    Case("double_forked_daemon", before=(
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(300)', '@MARK@'])\n"
        "    os._exit(0)\ntime.sleep(0.3)",)),
    Case("daemon_with_clean_environment", before=(
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.execve(sys.executable, [sys.executable, '-c', 'import time; time.sleep(300)', '@MARK@'], {})\n"
        "    os._exit(0)\ntime.sleep(0.3)",), confined=True),
    Case("hundred_mb_print", before=("print('x' * 100_000_000)",),
         check=lambda g: (assert_truncated(g))),
    Case("fill_the_disk", before=(
        "chunk = b'\\0' * 2**20\nfor i in range(3):\n    try:\n        with open(f'fill{i}.bin', 'wb') as f:\n"
        "            for _ in range(256):\n                f.write(chunk)\n    except OSError as exc:\n        print(exc)",)),
    Case("network_access", {"answer": (
        "import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', @PORT@))\n"
        "    answer = -1.0\nexcept OSError:\n    answer = 42.0")},
        expect={"process": WITHOUT({"test_answer"}), "namespaced": ALL_TESTS}),
    Case("tokens_in_environment", {"answer": (
        "leaks = [k for k, v in os.environ.items() if 'TOKEN' in k or 'SECRET' in k or 'ghp_' in v]\n"
        "answer = 42.0 if not leaks else -1.0")}),
    Case("plant_sitecustomize", before=(
        "import sysconfig\nplanted = []\n"
        "for d in {sysconfig.get_paths()['purelib'], sysconfig.get_paths()['stdlib'], sys.prefix}:\n"
        "    for name in ('sitecustomize.py', 'usercustomize.py', 'mlgrade_redteam.pth'):\n"
        "        try:\n            with open(os.path.join(d, name), 'x') as f:\n"
        "                f.write('open(\"@SENTINEL@\", \"w\").close()\\n')\n"
        "            planted.append(name)\n        except OSError:\n            pass\n"
        "assert not planted, planted",), confined=True),
    Case("plant_ipython_startup", before=(
        "for d in ('/root/.ipython', os.path.expanduser('~/.ipython'), '/tmp/.ipython', '@SENTINEL_DIR@'):\n"
        "    try:\n        os.makedirs(d + '/profile_default/startup', exist_ok=True)\n"
        "        with open(d + '/profile_default/startup/00-evil.py', 'w') as f:\n"
        "            f.write('open(\"@SENTINEL@\", \"w\").close()\\n')\n    except OSError:\n        pass\n"
        "try:\n    open('@SENTINEL@', 'w').close()\nexcept OSError:\n    pass",), confined=True),
    Case("pickle_through_np_save", before=(
        "class Payload:\n    def __reduce__(self):\n        return (os.system, ('touch @SENTINEL@',))\n"
        "_real_save = np.save\n"
        "def evil_save(file, arr, allow_pickle=True, **kw):\n"
        "    _real_save(file, np.array([Payload()], dtype=object), allow_pickle=True)\nnp.save = evil_save",),
        expect={"test_answer"}),
    # json.dumps is also how the kernel speaks Jupyter's protocol: breaking it breaks the
    # kernel, which is then treated as dead and restarted without the offending cell
    Case("json_dumps_patched", before=(
        "import json\n"
        "json.dumps = lambda obj, *a, **k: ('{\"status\": \"ok\", \"value\": {\"t\": \"float\", \"v\": 1.0}, '\n"
        "    '\"value\": {\"t\": \"float\", \"v\": 42.0}}')",), check=_restarted),
    Case("forged_results_duplicate_keys", before=(FORGE.replace("@DOC@", (
        '{"status": "ok", "value": {"t": "float", "v": 1.0}, "value": {"t": "float", "v": 42.0}}')),),
        expect=frozenset()),
    Case("forged_results_nan_and_pickle", before=(FORGE.replace("@DOC@", (
        '{"status": "ok", "value": {"t": "ndarray", "npy": "%s"}, "x": NaN}')).replace(
        "forged =", "forged = lambda: base64.b64encode(pickle.dumps(np.arange(3))).decode()\nforged2 ="),),
        expect=frozenset()),
    Case("lying_npy_header", {"save": (
        "def save_result(path, x):\n    header = np.lib.format.header_data_from_array_1_0(np.zeros(10**6))\n"
        "    with open(path, 'wb') as f:\n        np.lib.format.write_array_header_1_0(f, header)\n"
        "        f.write((np.asarray(x, dtype=float) ** 2).tobytes())\n    return path")},
        expect=WITHOUT({"test_saved"}), check=_feedback("test_saved", "does not match")),
    Case("npy_is_a_fifo", {"save": "def save_result(path, x):\n    os.mkfifo(path)\n    return path"},
         expect=WITHOUT({"test_saved"}), check=_feedback("test_saved", "not a regular file")),
    Case("npy_behind_a_folder_link", {"save": (
        "def save_result(path, x):\n    os.makedirs('real', exist_ok=True)\n"
        "    np.save('real/' + path, np.asarray(x, dtype=float) ** 2)\n"
        "    os.symlink('real/' + path, path)\n    return path")},
        expect=WITHOUT({"test_saved"})),
    Case("nan_and_inf_results", {"answer": "answer = float('nan')",
                                 "double": "def double(x):\n    return np.asarray(x) * np.inf"},
         expect=WITHOUT({"test_answer", "test_double"})),
]


def assert_truncated(g: Graded) -> None:
    assert g.result.execution.output_truncated


def build(case: Case, subs: dict[str, str]) -> nbformat.NotebookNode:
    cells = [IMPORTS, *case.before]
    cells += [case.replace.get(key, source) for key, source in HONEST.items()]
    cells += list(case.after)
    texts = []
    for text in cells:
        for key, value in subs.items():
            text = text.replace(key, value)
        texts.append(text)
    nb = new_notebook(cells=[new_code_cell(t) for t in texts])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def listener():
    """A TCP server on the host's loopback: reachable from the process tier only."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def _site_files() -> list[Path]:
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"], sys.prefix}
    return [Path(d) / n for d in paths
            for n in ("sitecustomize.py", "usercustomize.py", "mlgrade_redteam.pth")]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_notebook(case: Case, tier: str, tmp_path: Path, listener: int,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    if case.confined and tier == "process":
        pytest.skip("the process tier does not confine the host (docs/security.md)")
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o777)
    other = outside / "other-learner.txt"
    other.write_text("42.0")
    sentinel = outside / "escaped"
    pre_existing = {p for p in _site_files() if p.exists()}
    marker = f"mlgrade-redteam-{uuid.uuid4().hex}"
    for name in ("GITHUB_TOKEN", "MLGRADE_SECRET_TOKEN"):
        monkeypatch.setenv(name, "ghp_" + uuid.uuid4().hex)
    subs = {"@MARK@": marker, "@SENTINEL@": str(sentinel), "@SENTINEL_DIR@": str(outside),
            "@OTHER@": str(other), "@PORT@": str(listener)}
    folder = tmp_path / "in"
    folder.mkdir()
    try:
        graded = grade_hostile(build(case, subs), tier, folder)
    finally:
        planted = [p for p in _site_files() if p.exists() and p not in pre_existing]
        for path in planted:  # never leave a planted file in the shared environment
            path.unlink()
    assert not planted, f"planted in the Python environment: {planted}"
    assert graded.sandbox.tier == tier and graded.result.isolation == graded.sandbox.isolation
    assert graded.result.status == "graded", graded.result.reason
    assert graded.passed == set(case.expected(tier)), [
        (t.id, t.feedback) for t in graded.result.tests]
    if case.check is not None:
        case.check(graded)
    assert_nothing_survived(graded, marker, [sentinel, Path("/root/.ipython/profile_default/startup/00-evil.py")])


FD1_ATTACK = (
    "import os\nos.write(1, b'::notice::score 4/4\\n{\"score\": 4, \"max_score\": 4}\\n')\n"
    "os.write(2, b'::error::grader crashed\\n')\nprint('::set-output name=score::4')\n"
    "for fd in (1, 2):\n    try:\n        with open('/proc/%d/fd/%d' % (os.getppid(), fd), 'w') as f:\n"
    "            f.write('::notice::owned\\n')\n    except OSError:\n        pass\n"
    "os.write(1, b'x' * 5_000_000)"
)


@pytest.mark.parametrize("tier", TIERS)
def test_learner_output_never_reaches_mlgrade_stdout(tier: str, tmp_path: Path) -> None:
    """Fake scores and workflow commands written to fd 1/2 (or to the parent's fds) stay in
    the kernel's log: ``--format json`` on stdout is exactly the JSON document."""
    cells = [FD1_ATTACK if tier == "namespaced" else FD1_ATTACK.split("for fd")[0]]
    cells += [IMPORTS, *HONEST.values()]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    path = tmp_path / "fd1.ipynb"
    nbformat.write(nb, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGRADE_")}
    done = subprocess.run(
        [sys.executable, "-m", "mlgrade", "--assignments", str(ASSIGNMENTS), "check", "redteam",
         str(path), "--format", "json", "--isolation", tier],
        capture_output=True, timeout=120, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    doc = json.loads(done.stdout.decode())  # the whole of stdout is one JSON document
    assert doc["score"] == 4 and doc["isolation"] in (tier, f"{tier}+cgroup")
    assert b"::" not in done.stdout and b"::" not in done.stderr
