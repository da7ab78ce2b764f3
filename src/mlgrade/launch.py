"""``python -m mlgrade.launch [limits] -- CMD...``: set resource limits, then exec the kernel.

The kernel manager already starts the kernel in a new session (its own process group); this
wrapper adds rlimits before the learner's code can run, so they hold for the kernel and every
process it starts. Kept import-light: it runs once per kernel start.
"""

from __future__ import annotations

import os
import resource
import sys


def _set(limit: int, value: int) -> None:
    soft, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))


def main(argv: list[str]) -> None:
    if "--" not in argv:
        sys.exit("usage: python -m mlgrade.launch [--as-mb N] [--fsize-mb N] [--nofile N] "
                 "[--nproc N] [--cpu-s N] -- CMD...")
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1 :]
    values = dict(zip(opts[::2], (int(v) for v in opts[1::2]), strict=True))
    _set(resource.RLIMIT_CORE, 0)
    if values.get("--as-mb"):
        _set(resource.RLIMIT_AS, values["--as-mb"] * 1024 * 1024)
    if values.get("--fsize-mb"):
        _set(resource.RLIMIT_FSIZE, values["--fsize-mb"] * 1024 * 1024)
    if values.get("--nofile"):
        _set(resource.RLIMIT_NOFILE, values["--nofile"])
    if values.get("--nproc"):
        _set(resource.RLIMIT_NPROC, values["--nproc"])
    if values.get("--cpu-s"):
        _set(resource.RLIMIT_CPU, values["--cpu-s"])
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
