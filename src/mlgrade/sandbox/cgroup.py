"""The ``cgroup`` layer: memory and process limits, and a teardown that misses nothing (Linux).

It adds to whichever tier runs (``process`` or ``namespaced``); the result is stamped as e.g.
``namespaced+cgroup``. Only cgroups *nested under the ones this process already sits in* are
created (per hierarchy, from ``/proc/self/cgroup``), named ``mlgrade-<pid>-<slot>-<n>`` so a
leftover is recognisable; the parent's own settings are never touched.

- Limits: memory (cgroup v2 ``memory.max`` + ``memory.swap.max=0``, or v1
  ``memory.limit_in_bytes`` + ``memory.memsw.limit_in_bytes``) and processes (``pids.max``).
  A controller is taken from cgroup v2 when the parent already delegates it
  (``cgroup.subtree_control``), else from its v1 hierarchy.
- Joining: the kernel command is prefixed with a ``/bin/sh`` joiner that writes its own pid
  into every group's ``cgroup.procs`` and then execs the rest, so the kernel (and bubblewrap,
  for the namespaced tier) is inside before any learner code runs; every descendant inherits.
- Teardown (:meth:`CgroupJob.destroy`): cgroup v2 ``cgroup.kill`` when a v2 group exists (on a
  hybrid machine one is created for tracking alone, without controllers), then SIGKILL over
  every group's ``cgroup.procs`` until all are empty (bounded), then ``rmdir``. A group that
  will not empty raises :class:`SandboxUnavailableError` (the slot is quarantined, the batch
  stops), like the uid reaper.

Where no writable cgroup exists (not root and nothing delegated, macOS) the layer is absent.
``MLGRADE_CGROUP=0`` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import itertools
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mlgrade.errors import SandboxUnavailableError
from mlgrade.reaping import all_dying, kill_all, patience, wait_for

PIDS_MAX = 512  # processes and threads of one kernel (BLAS and torch pools count)
EMPTY_WAIT_S = 3.0
# joiner: ``sh -c JOIN sh N PROCS_1 .. PROCS_N CMD...``; exit 125 if a write fails (the kernel
# then never starts, so nothing runs outside the limits)
JOIN = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
        'n=$((n - 1)); done; exec "$@"')

_sequence = itertools.count()
_live: set[CgroupJob] = set()
_live_lock = threading.Lock()


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy and the cgroup this process sits in there."""

    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: bound controllers; v2: what the parent delegates
    own: Path  # the folder of this process's own cgroup in it

    def child(self, name: str) -> Path:
        return self.own / name


@dataclass(frozen=True)
class CgroupPlan:
    """Where this machine's groups go: one hierarchy per job (tracking, memory, pids)."""

    memory: Hierarchy
    pids: Hierarchy
    tracker: Hierarchy | None  # a cgroup v2 hierarchy (for ``cgroup.kill``), if writable

    def hierarchies(self) -> list[Hierarchy]:
        out: list[Hierarchy] = []
        for h in (self.tracker, self.memory, self.pids):
            if h is not None and h not in out:
                out.append(h)
        return out


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount point, root inside the hierarchy, super options) of cgroup mounts."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
                continue
            point = fields[4].replace("\\040", " ")
            found.append((tail[0], point, fields[3], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """``/proc/self/cgroup``: controller list (``""`` for v2) -> this process's path."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                paths[parts[1]] = parts[2]
    return paths


def _folder(point: str, root: str, path: str) -> Path | None:
    if root != "/" and not (path == root or path.startswith(root.rstrip("/") + "/")):
        return None  # our cgroup is outside what this mount shows
    rel = path[len(root):] if root != "/" else path
    folder = Path(point) / rel.lstrip("/")
    return folder if folder.is_dir() else None


def hierarchies() -> list[Hierarchy]:
    """The cgroup hierarchies this process can see, each with its own cgroup's folder."""
    own = _own_paths()
    found: list[Hierarchy] = []
    for fstype, point, root, options in _mounts():
        if fstype == "cgroup2":
            path = own.get("")
            if path is None:
                continue
            folder = _folder(point, root, path)
            if folder is None:
                continue
            try:
                delegated = (folder / "cgroup.subtree_control").read_text().split()
            except OSError:
                delegated = []
            found.append(Hierarchy(2, frozenset(delegated), folder))
        else:
            key = next((k for k in own if k and set(k.split(",")) & options), None)
            if key is None:
                continue
            folder = _folder(point, root, own[key])
            if folder is not None:
                found.append(Hierarchy(1, frozenset(key.split(",")), folder))
    return found


def plan() -> CgroupPlan | str:
    """Where the groups would go, or why there is no cgroup layer here."""
    if not sys.platform.startswith("linux"):
        return "cgroups need Linux"
    try:
        found = [h for h in hierarchies() if os.access(h.own, os.W_OK)]
    except OSError as exc:
        return f"cannot read the cgroup mounts ({exc})"
    v2 = next((h for h in found if h.version == 2), None)

    def pick(controller: str) -> Hierarchy | None:
        if v2 is not None and controller in v2.controllers:
            return v2
        return next((h for h in found if h.version == 1 and controller in h.controllers), None)

    memory, pids = pick("memory"), pick("pids")
    if memory is None or pids is None:
        missing = " and ".join(c for c, h in (("memory", memory), ("pids", pids)) if h is None)
        return (f"no writable cgroup with the {missing} controller under this process's own "
                "cgroup (run as root, or in a delegated cgroup v2 with memory and pids enabled)")
    return CgroupPlan(memory, pids, v2)


@functools.cache
def cgroup_plan() -> CgroupPlan | str:
    """:func:`plan`, confirmed once per process by creating and removing a probe group."""
    found = plan()
    if isinstance(found, str):
        return found
    if os.environ.get("MLGRADE_CGROUP", "1") == "0":
        return "turned off (MLGRADE_CGROUP=0)"
    for h in found.hierarchies():
        remove_stale(h)
    probe = CgroupJob(found, "probe")
    try:
        probe.create(memory_mb=64, pids_max=8)
    except (OSError, SandboxUnavailableError) as exc:
        with contextlib.suppress(Exception):
            probe.destroy()
        return f"cannot create a cgroup ({exc})"
    try:
        probe.destroy()
    except SandboxUnavailableError as exc:
        return str(exc)
    return found


def remove_stale(h: Hierarchy) -> list[Path]:
    """Remove empty ``mlgrade-<pid>-*`` groups whose mlgrade process is gone (a crashed or
    SIGKILLed run). Groups that still hold processes are left alone (and named in logs by
    their reaper, if any); so are those of a live mlgrade."""
    removed: list[Path] = []
    try:
        entries = list(h.own.iterdir())
    except OSError:
        return removed
    for folder in entries:
        parts = folder.name.split("-")
        if len(parts) < 3 or parts[0] != "mlgrade" or not parts[1].isdigit():
            continue
        if int(parts[1]) == os.getpid() or Path(f"/proc/{parts[1]}").exists():
            continue
        with contextlib.suppress(OSError):
            if not _procs(folder):
                folder.rmdir()
                removed.append(folder)
    return removed


def cgroup_problem() -> str | None:
    """Why the cgroup layer is absent here (None when it is present)."""
    found = cgroup_plan()
    return found if isinstance(found, str) else None


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


def _procs(folder: Path) -> list[int]:
    try:
        text = (folder / "cgroup.procs").read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


class CgroupJob:
    """The groups of one kernel start: create, join (argv prefix), destroy."""

    def __init__(self, where: CgroupPlan, slot: int | str) -> None:
        self.plan = where
        self.name = f"mlgrade-{os.getpid()}-{slot}-{next(_sequence)}"
        self.folders: list[Path] = []  # created so far, in creation order
        self.hierarchies = where.hierarchies()

    def create(self, memory_mb: int | None, pids_max: int = PIDS_MAX) -> None:
        """Make the groups and set their limits; on any error remove what was made."""
        with _live_lock:
            _live.add(self)
        try:
            for h in self.hierarchies:
                folder = h.child(self.name)
                folder.mkdir(mode=0o755)
                self.folders.append(folder)
            if memory_mb:
                self._limit_memory(self.plan.memory.child(self.name), self.plan.memory.version,
                                   memory_mb * 1024 * 1024)
            _write(self.plan.pids.child(self.name) / "pids.max", str(pids_max))
        except OSError:
            self.destroy()
            raise

    @staticmethod
    def _limit_memory(folder: Path, version: int, limit: int) -> None:
        if version == 2:
            _write(folder / "memory.max", str(limit))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            return
        _write(folder / "memory.limit_in_bytes", str(limit))
        if (folder / "memory.memsw.limit_in_bytes").exists():  # memory + swap: no swapping out
            _write(folder / "memory.memsw.limit_in_bytes", str(limit))

    def join_argv(self) -> list[str]:
        """Prefix for the kernel command: join every group, then exec the rest."""
        procs = [str(f / "cgroup.procs") for f in self.folders]
        return ["/bin/sh", "-c", JOIN, "sh", str(len(procs)), *procs]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for folder in self.folders:
            found.update(_procs(folder))
        return sorted(found)

    def memory_events(self) -> dict[str, int]:
        """OOM counters of the memory group (``oom_kill`` > 0: the kernel ran out of memory)."""
        folder = self.plan.memory.child(self.name)
        try:
            if self.plan.memory.version == 2:
                text = (folder / "memory.events").read_text()
            else:
                text = (folder / "memory.oom_control").read_text()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out

    def destroy(self, wait_s: float = EMPTY_WAIT_S) -> None:
        """Kill everything inside, verify the groups are empty, remove them. Idempotent.

        Raises :class:`SandboxUnavailableError` if a group does not empty (or cannot be
        removed) in ``wait_s``; the folder is then left for inspection."""
        if not self.folders:
            with _live_lock:
                _live.discard(self)
            return
        for folder in self.folders:
            kill = folder / "cgroup.kill"
            if kill.exists():  # cgroup v2: every process at once, forks in flight included
                with contextlib.suppress(OSError):
                    _write(kill, "1")
        # patient (scaled by the load, longer while the processes are visibly dying): only
        # what survives SIGKILL quarantines the slot, not a slow machine
        left = wait_for(self.pids, lambda pids: not pids, base_s=wait_s, retry=kill_all,
                        still_dying=all_dying)
        if left:
            raise SandboxUnavailableError(
                f"{len(left)} process(es) stayed in cgroup {self.name} after SIGKILL (pids "
                f"{left[:5]}); the slot is quarantined and grading stopped. Kill them "
                f"(`ps -fp PID`), remove {self.folders[0]} with rmdir, and run mlgrade again."
            )
        deadline = time.monotonic() + patience(wait_s)
        for folder in reversed(list(self.folders)):
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:  # EBUSY while the last exits are accounted
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise SandboxUnavailableError(
                            f"cannot remove cgroup {folder} ({exc.strerror}); the slot is "
                            "quarantined and grading stopped. Remove it with rmdir once it is "
                            "empty, and run mlgrade again."
                        ) from exc
                    time.sleep(0.002)
            self.folders.remove(folder)
        with _live_lock:
            _live.discard(self)


@atexit.register
def _remove_leftovers() -> None:
    """Groups of kernels whose start failed before a reap: never leave them behind."""
    with _live_lock:
        jobs = list(_live)
    for job in jobs:
        with contextlib.suppress(Exception):
            job.destroy(wait_s=1.0)
