"""Per-slot unprivileged uids, and making sure nothing of a submission outlives it.

When mlgrade runs as root, each worker slot's kernels run as a dedicated uid
(``UID_BASE + slot``). A uid is leased with an exclusive ``flock`` so that two mlgrade
processes on one machine (two batches, a batch and a test run) never share one: the reaper
kills *every* process of the uid after each submission, so sharing would kill a neighbour.

After a kernel stops, :func:`reap` kills what is left (by uid when there is one, else by a
per-launch token in the environment) and verifies that nothing remains; if something does,
the slot is quarantined: :class:`SandboxUnavailableError`, which stops a batch.
"""

from __future__ import annotations

import fcntl
import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlgrade.errors import SandboxUnavailableError
from mlgrade.reaping import all_dying, kill_all, wait_for

UID_BASE = int(os.environ.get("MLGRADE_UID_BASE", "61000"))
UID_STRIDE = 64  # slot s may also use UID_BASE + s + k * UID_STRIDE when its own uid is busy
UID_TRIES = 32
REAP_WAIT_S = 3.0


def lock_dir() -> Path:
    """Root-only lock folder (``/run`` is not writable by the kernel's uid)."""
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    path = base / "mlgrade-slots"
    path.mkdir(mode=0o755, exist_ok=True)
    st = path.lstat()
    if st.st_uid != os.geteuid() or not path.is_dir() or path.is_symlink():
        raise SandboxUnavailableError(
            f"{path} is not owned by this user; remove it (it holds mlgrade's uid locks) and retry."
        )
    return path


def _status_uids(pid: str) -> tuple[set[int], str] | None:
    """The real/effective/saved/fs uids and the state of ``pid`` (None if it is gone).

    ``/proc/PID/status`` rather than the owner of ``/proc/PID``: a process that makes itself
    non-dumpable shows as root there."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    uids: set[int] = set()
    state = ""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            uids = {int(v) for v in line.split()[1:]}
        elif line.startswith("State:"):
            state = line.split()[1] if len(line.split()) > 1 else ""
    return uids, state


def pids_of_uid(uid: int) -> list[int]:
    """Live (non-zombie) processes that run as ``uid`` in any of their uids."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        info = _status_uids(entry)
        if info is not None and uid in info[0] and info[1] not in ("Z", "X"):
            found.append(int(entry))
    return found


def tasks_of_uid(uid: int) -> int | None:
    """Threads (what RLIMIT_NPROC counts) of processes whose real uid is ``uid``; None if
    ``/proc`` cannot tell."""
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        try:
            if int(fields.get("Uid", "-1").split()[0]) == uid:
                total += int(fields.get("Threads", "1").strip())
        except (ValueError, IndexError):
            continue
    return total


def pids_with_token(token: str) -> list[int]:
    """Live processes of this user whose initial environment carries ``MLGRADE_JOB=token``."""
    needle = f"MLGRADE_JOB={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                env = handle.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            info = _status_uids(entry)
            if info is not None and info[1] not in ("Z", "X"):
                found.append(int(entry))
    return found


def kill_until_gone(find: Callable[[], list[int]], what: str, wait_s: float = REAP_WAIT_S) -> None:
    """SIGKILL whatever ``find()`` returns until it returns nothing; quarantine what survives.

    The wait is :func:`mlgrade.reaping.wait_for`'s: ``wait_s`` stretched by the machine's load,
    longer while what is left is visibly dying, so a slow machine is not a quarantine."""
    left = wait_for(find, lambda pids: not pids, base_s=wait_s, retry=kill_all,
                    still_dying=all_dying)
    if left:
        raise SandboxUnavailableError(
            f"{len(left)} process(es) of {what} survived SIGKILL (pids {left[:5]}); the slot "
            "is quarantined and grading stopped. Check them with `ps -fp PID`, kill them, "
            "and run mlgrade again."
        )


@dataclass
class SlotLease:
    """An exclusive hold on one unprivileged uid for a worker slot (root only)."""

    slot: int
    uid: int = -1
    _handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> int:
        if self._handle is not None:
            return self.uid
        folder = lock_dir()
        for k in range(UID_TRIES):
            uid = UID_BASE + self.slot + k * UID_STRIDE
            handle = open(folder / f"uid-{uid}.lock", "ab")  # noqa: SIM115 - held for the lease
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            # the lock was free, so anything still running as this uid is an orphan of a
            # crashed run: clear it before use, or skip the uid if it will not die
            try:
                kill_until_gone(functools.partial(pids_of_uid, uid), f"uid {uid}")
            except SandboxUnavailableError:
                handle.close()
                continue
            self.uid, self._handle = uid, handle
            return uid
        raise SandboxUnavailableError(
            f"no free sandbox uid for slot {self.slot} (tried {UID_TRIES} from {UID_BASE}): "
            "too many mlgrade runs on this machine at once; wait for some to finish."
        )

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


# -- who the kernel is --------------------------------------------------------------------------
SLOT_USER = "learner"  # the name of every slot uid inside the sandbox


def kernel_user(uid: int | None) -> str:
    """The name the kernel runs under: ``learner`` for a slot uid (which the host's passwd does
    not know), else this process's own user."""
    if uid is not None:
        return SLOT_USER
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or SLOT_USER


def identity_env(uid: int | None, home: Path) -> dict[str, str]:
    """USER, LOGNAME and HOME for the kernel, so ``getpass.getuser()`` (torch reaches it while
    building an optimiser) never has to look the uid up and fail."""
    name = kernel_user(uid)
    return {"USER": name, "LOGNAME": name, "HOME": str(home)}


def passwd_files(uid: int, gid: int, name: str, home: Path) -> tuple[str, str]:
    """``/etc/passwd`` and ``/etc/group`` for the namespaced box: root, the kernel's user and
    nobody, so ``pwd.getpwuid(os.getuid())`` resolves inside the box."""
    users = ["root:x:0:0:root:/root:/usr/sbin/nologin"]
    groups = ["root:x:0:"]
    if uid != 0:
        users.append(f"{name}:x:{uid}:{gid}:mlgrade kernel:{home}:/usr/sbin/nologin")
    if gid != 0:
        groups.append(f"{name}:x:{gid}:")
    users.append("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin")
    groups.append("nogroup:x:65534:")
    return "\n".join(users) + "\n", "\n".join(groups) + "\n"
