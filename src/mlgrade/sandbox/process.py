"""The ``process`` tier (everywhere) and ``none`` (explicit opt-out)."""

from __future__ import annotations

import os
import secrets
import stat
import sys
from dataclasses import replace
from pathlib import Path

from mlgrade import launch as _launch_module
from mlgrade.config import Settings
from mlgrade.errors import SandboxUnavailableError
from mlgrade.sandbox import (
    FILE_SIZE_MB,
    PROCESSES,
    KernelLaunch,
    ipykernel_argv,
    kernel_env,
    kernel_python,
    launcher_argv,
    limit_options,
)
from mlgrade.sandbox.canary import Canary
from mlgrade.sandbox.cgroup import CgroupJob, CgroupPlan, cgroup_plan
from mlgrade.sandbox.gpu import MemoryLimit, gpu_names, gpu_present, memory_limit
from mlgrade.sandbox.slots import (
    SlotLease,
    identity_env,
    kill_until_gone,
    pids_of_uid,
    pids_with_token,
    tasks_of_uid,
)
from mlgrade.sandbox.tree import chown_tree

# run with ``python -I -S -c``: importable nowhere inside a namespaced sandbox, by design
LAUNCH_SOURCE = Path(_launch_module.__file__).read_text(encoding="utf-8")
_AS_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0


def world_reachable(path: str) -> bool:
    """Whether any uid can reach and read ``path`` (every folder above it searchable)."""
    real = Path(os.path.realpath(path))
    try:
        if not real.stat().st_mode & stat.S_IROTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    except OSError:
        return False


def can_switch_uid() -> bool:
    """As root, the kernel runs as a slot uid, if that uid can run the interpreter at all
    (a pyenv under a 0700 /root cannot be: then the process tier keeps the current uid)."""
    import sysconfig

    return _AS_ROOT and world_reachable(kernel_python()) and world_reachable(
        sysconfig.get_paths()["stdlib"])


def _chown_tree(root: Path, uid: int) -> None:
    # iterative and link-safe: after a restart the job folder holds whatever the learner made
    chown_tree(root, uid, uid)


class ProcessSandbox:
    """Separate process and process group, rlimits, scrubbed environment. Works everywhere.

    As root on Linux the kernel also runs as the slot's own unprivileged uid (see
    :mod:`mlgrade.sandbox.slots`), so it cannot write the Python environment, read root's
    files, signal or trace mlgrade, or survive the reaper.
    """

    tier = "process"

    def __init__(self, slot: int = 0, *, file_size_mb: int = FILE_SIZE_MB,
                 processes: int = PROCESSES, cgroup: bool = True) -> None:
        self.slot = slot
        self.file_size_mb = file_size_mb
        self.processes = processes
        found = cgroup_plan() if cgroup and sys.platform.startswith("linux") else None
        # the cgroup layer (memory and pids limits, cgroup.kill teardown) when writable here
        self.cgroup: CgroupPlan | None = found if isinstance(found, CgroupPlan) else None
        self._cgroup_job: CgroupJob | None = None
        self.oom_kills = 0  # kernels (or their children) the cgroup's OOM killer stopped
        self._lease = SlotLease(slot) if self._switches_uid() else None
        self._token: str | None = None
        self._protected: list[str] = []
        # NVIDIA devices here: the kernel gets them, and no RLIMIT_AS (see sandbox/gpu.py)
        self.gpu_root = "/"  # where devices and driver files are looked up (tests: a fake tree)
        self.gpu = sys.platform.startswith("linux") and gpu_present(self.gpu_root)
        self.device = ", ".join(gpu_names(self.gpu_root)) if self.gpu else "none"

    def memory_limit(self, settings: Settings) -> MemoryLimit:
        """How this sandbox limits the kernel's memory for ``settings.memory_mb``."""
        return memory_limit(settings.memory_mb, gpu=self.gpu, cgroup=self.cgroup is not None)

    def _limits(self, settings: Settings) -> list[str]:
        """The launcher's rlimit options, RLIMIT_AS only where :meth:`memory_limit` says."""
        rlimit_as = self.memory_limit(settings).rlimit_as_mb
        return limit_options(replace(settings, memory_mb=rlimit_as), self.file_size_mb)

    def _switches_uid(self) -> bool:
        return can_switch_uid()

    @property
    def isolation(self) -> str:
        """What is stamped into results: the tier, plus ``+cgroup`` when that layer is on."""
        return f"{self.tier}+cgroup" if self.cgroup is not None else self.tier

    @property
    def uid(self) -> int | None:
        """The kernel's uid when this sandbox switches uids (as root), else None."""
        return self._lease.uid if self._lease is not None and self._lease.held else None

    def protect(self, *paths: Path) -> None:
        """Paths the kernel must not see (graders, the assignment folder, the gradebook)."""
        for path in paths:
            text = str(Path(path).resolve())
            if text not in self._protected:
                self._protected.append(text)

    # -- launching -------------------------------------------------------------------------
    def _prepare(self, job_dir: Path) -> tuple[dict[str, str], list[str], Path | None]:
        """Environment, launcher options and connection folder shared by the tiers."""
        (job_dir / ".tmp").mkdir(exist_ok=True)
        env = kernel_env(job_dir)
        self._token = secrets.token_hex(8)
        env["MLGRADE_JOB"] = self._token  # lets the reaper find strays when uids are not ours
        options: list[str] = []
        conn: Path | None = None
        if self._lease is not None:
            uid = self._lease.acquire()
            env.update(identity_env(uid, job_dir))
            base = job_dir.parent
            os.chmod(base, 0o711)  # the kernel may traverse to its folders, not list them
            conn = base / "conn"
            conn.mkdir(mode=0o711, exist_ok=True)
            _chown_tree(job_dir, uid)
            os.chown(conn, uid, uid)
            options = ["--nproc", str(self.processes), "--uid", str(uid), "--gid", str(uid),
                       "--own", "{connection_file}"]
        else:
            env.update(identity_env(None, job_dir))
        if self._lease is None and sys.platform.startswith("linux") and os.geteuid() != 0:
            # RLIMIT_NPROC counts every thread of the user, so leave room for the desktop
            # session and bound what the kernel may add on top
            current = tasks_of_uid(os.getuid())
            if current is not None:
                options = ["--nproc", str(current + 4 * self.processes)]
        return env, options, conn

    def _contain(self, argv: list[str], settings: Settings) -> list[str]:
        """``argv`` started inside fresh cgroups (when the layer is on): the joiner runs
        first, so the kernel, and bubblewrap before it, never runs outside the limits."""
        if self.cgroup is None:
            return argv
        if self._cgroup_job is not None:  # a kernel whose start failed before any reap
            self._cgroup_job.destroy()
            self._cgroup_job = None
        job = CgroupJob(self.cgroup, self.slot)
        try:
            job.create(memory_mb=self.memory_limit(settings).cgroup_mb or None,
                       pids_max=self.processes)
        except OSError as exc:
            raise SandboxUnavailableError(
                f"could not create the kernel's cgroup {job.name} ({exc}); nothing was graded. "
                "Fix the machine's cgroups or turn the layer off with MLGRADE_CGROUP=0."
            ) from exc
        self._cgroup_job = job
        return job.join_argv() + argv

    def canary(self) -> Canary:
        promises = {"no_tokens"} | ({"not_root"} if self._lease is not None else set())
        return Canary(frozenset(promises))

    def launch(self, job_dir: Path, run_dir: Path, settings: Settings) -> KernelLaunch:
        env, options, conn = self._prepare(job_dir)
        argv = launcher_argv(*self._limits(settings), *options, "--sigint", "dfl") + ipykernel_argv()
        return KernelLaunch(argv=self._contain(argv, settings), env=env, conn_dir=conn, canary=self.canary())

    # -- after each kernel -----------------------------------------------------------------
    def reap(self) -> None:
        """Kill anything of this submission still running; quarantine if it will not die."""
        job = self._cgroup_job
        if job is not None:  # everything the kernel started, then the groups themselves
            self.oom_kills += job.memory_events().get("oom_kill", 0)
            job.destroy()
            self._cgroup_job = None
        uid = self.uid
        if uid is not None:
            kill_until_gone(lambda: pids_of_uid(uid), f"sandbox uid {uid} (slot {self.slot})")
        elif self._token is not None and sys.platform.startswith("linux"):
            token = self._token
            kill_until_gone(lambda: pids_with_token(token), "the submission")

    def release(self) -> None:
        """End of a submission: give the slot's uid back."""
        if self._cgroup_job is not None:
            self.reap()
        if self._lease is not None:
            self._lease.release()


class NoSandbox:
    """``--isolation none``: the kernel still runs in its own process, without limits."""

    tier = "none"

    def __init__(self) -> None:
        self.gpu = sys.platform.startswith("linux") and gpu_present()
        self.device = ", ".join(gpu_names()) if self.gpu else "none"

    def memory_limit(self, settings: Settings) -> MemoryLimit:
        """No limits in this tier."""
        return MemoryLimit(0, 0, "--isolation none")

    def launch(self, job_dir: Path, run_dir: Path, settings: Settings) -> KernelLaunch:
        (job_dir / ".tmp").mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(kernel_env(job_dir))
        env.update(identity_env(None, job_dir))
        return KernelLaunch(argv=ipykernel_argv(), env=env)
