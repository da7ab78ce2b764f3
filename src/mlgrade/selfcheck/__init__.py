"""Check a question from inside the learner's notebook: ``mlgrade.check("q3")``.

The notebook's *current* state in the running kernel is graded, without re-running anything,
by the same hidden graders, settings, seed and comparisons as ``mlgrade check``, in a grader
process that is not the kernel (:mod:`mlgrade.selfcheck.grader`); this cell answers its
questions meanwhile (:mod:`mlgrade.selfcheck.serve`). The result is labelled a self-check: the
official grade is the one from a fresh sandboxed kernel (``mlgrade check``).
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Iterable
from typing import Any

from mlgrade.selfcheck.serve import SelfCheckError, Worker, serve

__all__ = ["SelfCheckError", "check", "load_ipython_extension", "prestart"]

_worker: Worker | None = None
# names every IPython session defines: never evidence of which assignment this is
_SESSION_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _names(shell: Any) -> list[str]:
    hidden = getattr(shell, "user_ns_hidden", {})
    return sorted(n for n in shell.user_ns if isinstance(n, str) and not n.startswith("_")
                  and n not in hidden and n not in _SESSION_NAMES)


def _notebook_hint(shell: Any) -> str | None:
    """The notebook's path where the front-end tells the kernel (VS Code, Jupyter Server)."""
    for value in (shell.user_ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(value, str) and value.endswith(".ipynb"):
            return value
    return None


def prestart() -> None:
    """Start this kernel's grader process now, in the background, so that the first check
    does not wait for it (its imports take seconds); only in a learner's own Jupyter kernel,
    never in a grading kernel (``MLGRADE_KERNEL``), and not with ``MLGRADE_PRESTART=0``."""
    if os.environ.get("MLGRADE_KERNEL") or os.environ.get("MLGRADE_PRESTART") == "0":
        return
    shell = _shell()
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    try:
        _worker_for_session(_notebook_hint(shell))
    except OSError:  # the first check starts it, and says what is wrong
        return


def _worker_for_session(hint: str | None = None) -> Worker:
    global _worker
    if _worker is None or not _worker.alive:
        if _worker is not None:
            _worker.close()
        _worker = Worker(hint)
    return _worker


class _Output:
    """The cell's output: in a Jupyter kernel one display, updated with "test k of n" while the
    graders run and replaced by the report; in a terminal, just the report."""

    def __init__(self, shell: Any, enabled: bool, starting: bool) -> None:
        self._handle: Any = None
        if enabled and getattr(shell, "kernel", None) is not None:
            from IPython.display import display

            first = "mlgrade: starting the grader…" if starting else "mlgrade: checking…"
            self._handle = display({"text/plain": first}, raw=True, display_id=True)

    def status(self, text: str) -> None:
        self._line(f"mlgrade: {text}…")

    def progress(self, k: int, n: int, title: str) -> None:
        self._line(f"mlgrade: checking, test {k} of {n}: {title}")

    def _line(self, line: str) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": line, "text/html": f"<pre>{html.escape(line)}</pre>"},
                                raw=True)

    def show(self, final: dict[str, Any]) -> None:
        # both: JupyterLab, classic Notebook and VS Code show the HTML, a terminal the text
        bundle = {"text/plain": str(final.get("text", "")), "text/html": str(final.get("html", ""))}
        if self._handle is not None:
            self._handle.update(bundle, raw=True)
        else:
            from IPython.display import display

            display(bundle, raw=True)


def check(question: str | Iterable[str] | None = None, *, assignment: str | None = None,
          seed: int | None = None, display: bool = True) -> dict[str, Any] | None:
    """Grade ``question`` (``"q3"``, a list of ids, or ``None`` for every question) against
    this kernel's current state, and show the report in the cell's output.

    ``assignment`` names the assignment when mlgrade cannot tell it from the names your
    notebook defines; ``seed`` is the graders' seed (default: ``MLGRADE_SEED`` or the
    assignment's, as with ``mlgrade check``). With ``display=False`` nothing is shown and the
    result document (the JSON format's fields plus ``label``) is returned instead.
    """
    shell = _shell()
    if shell is None or not hasattr(shell, "user_ns"):
        raise SelfCheckError("mlgrade.check() runs inside a Jupyter or IPython session; "
                             "from a terminal, use `mlgrade check ASSIGNMENT NOTEBOOK`.")
    questions = [question] if isinstance(question, str) else (None if question is None else list(question))
    hint = _notebook_hint(shell)
    request = {"op": "check", "questions": questions, "assignment": assignment, "seed": seed,
               "names": _names(shell), "hint": hint,
               "assignments": os.environ.get("MLGRADE_ASSIGNMENTS") or None}
    worker = _worker_for_session(hint)
    output = _Output(shell, display, starting=not worker.served)
    try:
        final = serve(worker, request, output.progress, output.status)
    except BaseException:
        # an interrupt or a broken pipe: this grader process may be mid-run; start afresh
        global _worker
        worker.close()
        _worker = None
        raise
    if final.get("op") == "error":
        if not display:
            raise SelfCheckError(str(final.get("message")))
        # a learner's mistake (a question id, an unknown assignment): one line, no traceback
        message = f"mlgrade: {final.get('message')}"
        output.show({"text": message, "html": f"<pre>{html.escape(message)}</pre>"})
        return None
    result: dict[str, Any] = dict(final["result"])
    result["label"] = final.get("label", "")
    if display:
        output.show(final)
        return None
    return result


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext mlgrade`` adds ``%mlgrade check [q3 ...]`` (and starts the grader process in
    the background, as ``import mlgrade`` does)."""
    def magic(line: str) -> None:
        words = line.split()
        if not words or words[0] != "check":
            print("usage: %mlgrade check [q1 q2 ...] [--assignment NAME]")
            return
        args = words[1:]
        name = None
        if "--assignment" in args:
            at = args.index("--assignment")
            name = args[at + 1] if at + 1 < len(args) else None
            args = args[:at] + args[at + 2:]
        check(args or None, assignment=name)

    shell.register_magic_function(magic, "line", "mlgrade")
    prestart()
