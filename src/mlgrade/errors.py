"""One exception tree for everything the *person running mlgrade* must fix.

A learner's notebook that raises, hangs or kills its kernel is not an exception here: it is
data in the result. These classes are for unknown assignments, unreadable files, bad settings
and missing kernels. Every message says what happened and what to do next, on one line.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; an API documented in the README."""

    OK = 0  # graded, full marks (or a command that succeeded)
    POINTS_LOST = 1  # graded, some points lost (or the submission errored)
    USAGE = 2  # usage or input error: unknown assignment, missing file, not a notebook
    ENVIRONMENT = 3  # environment error: no kernel could start, sandbox unavailable
    INTERNAL = 4  # a bug in mlgrade or in a grader; please report it


class MlgradeError(Exception):
    """Base class: a problem the user can act on. ``str(err)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(MlgradeError):
    """The command line or a setting is wrong."""


class UnknownAssignmentError(UsageError):
    def __init__(self, name: str, known: list[str]) -> None:
        import difflib

        listing = ", ".join(known) if known else "none found"
        close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
        if not close and name.isdigit():  # `mlgrade check 3`
            close = [k for k in known if k.lower() == f"month{int(name)}"]
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(
            f"unknown assignment {name!r}{guess}. Available: {listing}. "
            "Run `mlgrade list` to see assignments."
        )
        self.name = name


class AssignmentInvalidError(UsageError):
    """An assignment folder or its metadata is broken (an author's problem)."""


class NotebookInputError(UsageError):
    """The notebook file given to mlgrade cannot be graded as it is."""


class SettingError(UsageError):
    """A setting has a bad value; the message names where the value came from."""


class EnvironmentProblem(MlgradeError):
    """The machine cannot run grading: no kernel, no sandbox, missing package."""

    exit_code = ExitCode.ENVIRONMENT


class KernelStartError(EnvironmentProblem):
    """No kernel could start. ``slow``: it started but did not answer in time (a busy
    machine), which is worth one more try."""

    slow: bool = False


class SandboxUnavailableError(EnvironmentProblem):
    pass


class OutOfDescriptors(KernelStartError):
    """This process has (nearly) no file descriptor left: the limit is too low for grading."""

    def __init__(self, detail: str) -> None:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        limit = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
        super().__init__(
            f"too few file descriptors for grading ({detail}; the limit is {limit} open files "
            "per process). Raise it, e.g. `ulimit -n 4096`, and run mlgrade again.")


def out_of_descriptors(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is EMFILE/ENFILE: no file descriptor left (ZMQ's
    ``ZMQError`` carries the same errno)."""
    import errno

    for _ in range(10):
        if exc is None:
            return False
        if getattr(exc, "errno", None) in (errno.EMFILE, errno.ENFILE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class MissingPackagesError(EnvironmentProblem):
    """An assignment needs packages that the kernel's environment lacks (an install away)."""


class CanaryFailed(SandboxUnavailableError):
    """The sandbox did not give what its tier promises; nothing may be graded in it."""


class GradebookError(MlgradeError):
    """The gradebook database cannot be used as asked."""
