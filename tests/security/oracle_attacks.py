"""Shared pieces of the design-aware red team for months 1 and 2 (tests/security/test_oracle_*):
a notebook written by someone who has read mlgrade's source, graded in a chosen tier.

``HIJACK`` takes over the bridge from inside the notebook's namespace, the way the old graders
could be fooled: ``__import__`` is shadowed (the request cell calls ``__import__('sys')``), so
every request reaches a fake harness that claims success for anything computed in the kernel;
``compile`` is shadowed (the harness is installed with ``compile``), and an audit hook watches
every ``exec``. Whatever it answers is learner data: the graders judge it like any return
value, so it earns nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell
from tests.conftest import assignment
from tests.security.redteam_support import Graded, run_graded

from mlgrade.config import resolve_settings

SECRET_SEED = 2_718_281_828  # an official grade's seed: not one a notebook can guess

HIJACK = '''
import builtins
import json
import sys as _real_sys

from IPython.display import publish_display_data

_MIME = "application/x.mlgrade.result"
_seen = []


def _answer(value):
    publish_display_data({_MIME: json.dumps({"status": "ok", "value": value})})


class _FakeHarness:
    """Claims success: True for every in-kernel check, a plausible number for everything else."""

    def request(self, payload):
        req = json.loads(payload)
        _seen.append(req.get("op"))
        if req.get("keep"):
            _answer({"t": "ref", "id": "r999", "type": "matplotlib.figure.Figure"})
        elif req.get("op") in ("eval", "has"):
            _answer({"t": "bool", "v": True})
        else:
            _answer({"t": "list", "items": [{"t": "float", "v": 0.5}, {"t": "int", "v": 0}]})


class _FakeSys:
    modules = {"_mlgrade_harness": _FakeHarness()}

    def __getattr__(self, name):
        return getattr(_real_sys, name)


_real_import = builtins.__import__


def __import__(name, *args, **kwargs):
    return _FakeSys() if name == "sys" else _real_import(name, *args, **kwargs)


_real_compile = builtins.compile


def compile(source, filename, *args, **kwargs):
    if filename == "<mlgrade-harness>":
        source = "def request(payload):\\n    pass\\n"
    return _real_compile(source, filename, *args, **kwargs)


def _hook(event, args):
    if event == "exec":
        _seen.append("exec")


_real_sys.addaudithook(_hook)
'''


def starter_with(name: str, *cells: str) -> NotebookNode:
    """The assignment's starter notebook (nothing solved) with ``cells`` appended."""
    nb = nbformat.read(assignment(name).starter, as_version=4)
    nb.cells.extend(new_code_cell(c) for c in cells)
    return nb


def grade_attack(name: str, nb: NotebookNode, tier: str, folder: Path,
                 seed: int = SECRET_SEED) -> Graded:
    """Grade ``nb`` for assignment ``name`` in ``tier`` with an official grade's secret seed."""
    a = assignment(name)
    path = folder / f"attack-{uuid.uuid4().hex[:8]}.ipynb"
    nbformat.write(nb, path)
    settings = resolve_settings({"memory_mb": 2048, "seed": seed}, a.limits, environ={})
    return run_graded(path, a, settings, tier)


def assert_honest_verdict(graded: Graded, honest: set[str]) -> None:
    """Exactly the honest parts pass; every lost point is a failure that says why."""
    result = graded.result
    assert result.status == "graded", result.reason
    assert graded.passed == honest, [(t.id, t.feedback) for t in result.tests
                                     if (t.id in honest) != (t.status == "passed")]
    assert sum(t.earned for t in result.tests) == sum(t.points for t in result.tests
                                                     if t.id in honest)
    for t in result.tests:
        assert t.status == "passed" or (t.status == "failed" and t.feedback.strip()), t
