"""Exit codes and the domain errors that carry them.

Services raise these; the CLI edge (``casectl.cli.app``) turns them into one
line on stderr and the exit code. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    NOT_ALLOWED = 4
    CONFLICT = 5
    INVALID = 6
    ENVIRONMENT = 7  # the machine, not the command: disk full, read-only, no permission, a damaged database file


class CasectlError(Exception):
    """A failure the user can act on: one message, one exit code."""

    code: ExitCode = ExitCode.ERROR
    # The error is that stdout cannot be written: it is reported on stderr only, never as JSON on stdout.
    stdout_failed: bool = False

    def __init__(self, message: str, *, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        # Extra lines (one per bad row or field) printed after the message.
        self.details = details or []


class UsageError(CasectlError):
    code = ExitCode.USAGE


class NotFound(CasectlError):
    code = ExitCode.NOT_FOUND


class NotAllowed(CasectlError):
    code = ExitCode.NOT_ALLOWED


class Conflict(CasectlError):
    code = ExitCode.CONFLICT


class InvalidInput(CasectlError):
    code = ExitCode.INVALID


class EnvironmentProblem(CasectlError):
    """Storage and the environment: the disk is full, a file or directory is read-only or not
    permitted, the database file is damaged or is not a casectl database."""

    code = ExitCode.ENVIRONMENT


_OS_PROBLEMS = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file would be too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "an input/output error (the disk or the network file system failed)",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files on the system",
}


def describe(e: OSError) -> str | None:
    """What an OSError that is the machine's doing means, in words; None for any other."""
    return _OS_PROBLEMS.get(e.errno or 0)


def os_problem(e: OSError) -> EnvironmentProblem | None:
    """An OSError that is the machine's doing, as one line (exit 7); None for any other (a bug)."""
    what = describe(e)
    if what is None:
        return None
    return EnvironmentProblem(f"{e.filename}: {what}" if e.filename is not None else what)
