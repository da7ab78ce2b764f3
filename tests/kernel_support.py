"""A real IPython kernel started the way a learner's Jupyter starts one (jupyter_client), with
a notebook's code cells executed in it: what ``mlgrade.check()`` runs inside."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from nbformat import NotebookNode

from mlgrade.assignments import Assignment


@dataclass
class Executed:
    """What one execute request produced."""

    status: str  # ok | error
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join(o.get("text", "") for o in self.outputs if o.get("name") == "stdout")

    @property
    def error(self) -> dict[str, Any] | None:
        return next((o for o in self.outputs if "ename" in o), None)

    @property
    def displays(self) -> list[dict[str, Any]]:
        return [o["data"] for o in self.outputs if "data" in o]


class LiveKernel:
    """A learner's kernel: run code, as a front-end would."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient) -> None:
        self.km, self.kc = km, kc

    def run(self, code: str, timeout: float = 600) -> Executed:
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False)
        outputs: list[dict[str, Any]] = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "error", "display_data", "execute_result"):
                outputs.append(msg["content"])
            elif kind == "update_display_data":  # as a front-end does: replace that display
                target = msg["content"].get("transient", {}).get("display_id")
                for out in outputs:
                    if out.get("transient", {}).get("display_id") == target:
                        out.setdefault("shown", [out["data"]])  # every state, in order
                        out["data"] = msg["content"]["data"]
                        out["shown"].append(out["data"])
                        out.setdefault("updates", 0)
                        out["updates"] += 1
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:  # e.g. the start's kernel_info
            reply = self.kc.get_shell_msg(timeout=timeout)
        return Executed(reply["content"]["status"], outputs)

    def run_notebook(self, nb: NotebookNode) -> None:
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.strip():
                self.run(cell.source)

    def check(self, question: str | None = None, **options: Any) -> dict[str, Any]:
        """``mlgrade.check(..., display=False)`` in the kernel; its result document."""
        args = ", ".join([repr(question)] + [f"{k}={v!r}" for k, v in options.items()])
        done = self.run(f"import json as _j, mlgrade as _m\nprint(_j.dumps(_m.check({args}, display=False)))")
        assert done.status == "ok", done.error
        return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def live_kernel(folder: Path, assignment: Assignment | None = None,
                env: Mapping[str, str] | None = None) -> Iterator[LiveKernel]:
    """A kernel whose working folder is ``folder`` (with the assignment's data files copied
    in, as ``mlgrade start`` does)."""
    folder.mkdir(parents=True, exist_ok=True)
    if assignment is not None:
        for data in assignment.data_dirs:
            shutil.copytree(data, folder / data.name, dirs_exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(folder), env=full_env)
    try:
        yield LiveKernel(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))


@dataclass
class Peak:
    """This process's resident memory over a block: at its start, and its peak within it."""

    start_kb: int
    peak_kb: int = 0

    @property
    def grown_mb(self) -> float:
        return (self.peak_kb - self.start_kb) / 1024


@contextmanager
def memory_peak() -> Iterator[Peak]:
    """How far a grading run grows this process at its peak (Linux). VmHWM is reset to the
    current RSS first (``/proc/self/clear_refs``: 5), so neither the pytest process's earlier
    peaks (what ``ru_maxrss`` reports: its whole lifetime's) nor its size so far count."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")
    peak = Peak(_status_kb("VmRSS"))
    try:
        yield peak
    finally:
        peak.peak_kb = _status_kb("VmHWM")


def verdicts(doc_tests: list[dict[str, Any]]) -> dict[str, tuple[str, float]]:
    """test id -> (status, earned): what must agree between the two ways of grading."""
    return {t["id"]: (str(t["status"]), float(t["earned"])) for t in doc_tests}
