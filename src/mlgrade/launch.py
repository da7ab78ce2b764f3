"""``python -m mlgrade.launch [options] -- CMD...``: contain this process, then exec CMD.

The kernel manager already starts the kernel in a new session (its own process group); this
wrapper adds what must hold before the learner's code can run, for the kernel and every
process it starts: rlimits, a scrubbed variable or two, and (when started as root) a switch to
the worker slot's unprivileged uid with no way back (no supplementary groups, no capabilities,
``no_new_privs``).

The sandbox runs this file's *source* with ``python -I -S -c`` (see ``mlgrade.sandbox``), so it
needs nothing importable and works inside a mount namespace where mlgrade itself is hidden.
Keep it standard-library only and import-light: it runs once per kernel start.

Options (each takes one value)::

    --as-mb N  --fsize-mb N  --nofile N  --nproc N  --cpu-s N     resource limits
    --uid N --gid N        switch to this uid/gid (root only); refuses to go on if it cannot
    --own PATH             chown PATH to --uid first (e.g. the 0600 connection file)
    --unset NAME           drop a variable (JPY_PARENT_PID inside a pid namespace)
    --sigint ign|dfl       SIGINT disposition to exec with ("ign" for bwrap, which would die
                           of the watchdog's interrupt; "dfl" for the kernel itself)
"""

from __future__ import annotations

import os
import resource
import signal
import sys

USAGE = ("usage: python -m mlgrade.launch [--as-mb N] [--fsize-mb N] [--nofile N] [--nproc N] "
         "[--cpu-s N] [--uid N --gid N] [--own PATH] [--unset NAME] [--sigint ign|dfl] -- CMD...")
LIMITS = {
    "--as-mb": (resource.RLIMIT_AS, 1024 * 1024),
    "--fsize-mb": (resource.RLIMIT_FSIZE, 1024 * 1024),
    "--nofile": (resource.RLIMIT_NOFILE, 1),
    "--nproc": (getattr(resource, "RLIMIT_NPROC", -1), 1),
    "--cpu-s": (resource.RLIMIT_CPU, 1),
}
PR_SET_NO_NEW_PRIVS = 38


def _set(limit: int, value: int) -> None:
    if limit < 0:
        return
    soft, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))


def _no_new_privs() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def _drop_to(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good; fail closed if any privilege remains."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise OSError("the uid switch did not take")
    try:  # root could get back in; an unprivileged uid cannot
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("still able to become root after dropping privileges")


def main(argv: list[str]) -> None:
    if "--" not in argv:
        sys.exit(USAGE)
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1 :]
    if len(opts) % 2 or not cmd:
        sys.exit(USAGE)
    ints: dict[str, int] = {}
    own: list[str] = []
    unset: list[str] = []
    sigint = None
    for name, value in zip(opts[::2], opts[1::2], strict=True):
        if name == "--own":
            own.append(value)
        elif name == "--unset":
            unset.append(value)
        elif name == "--sigint":
            sigint = signal.SIG_IGN if value == "ign" else signal.SIG_DFL
        elif name in LIMITS or name in ("--uid", "--gid"):
            ints[name] = int(value)
        else:
            sys.exit(USAGE)
    try:
        _set(resource.RLIMIT_CORE, 0)
        for name, (limit, unit) in LIMITS.items():
            if ints.get(name):
                _set(limit, ints[name] * unit)
        for name in unset:
            os.environ.pop(name, None)
        if "--uid" in ints:
            uid, gid = ints["--uid"], ints.get("--gid", ints["--uid"])
            for path in own:
                os.chown(path, uid, gid)
            _drop_to(uid, gid)
        _no_new_privs()
        if sigint is not None:
            signal.signal(signal.SIGINT, sigint)
    except OSError as exc:  # never start a kernel in a weaker box than asked for
        sys.exit("mlgrade.launch: could not contain the kernel: " + str(exc))
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
