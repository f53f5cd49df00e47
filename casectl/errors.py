"""Exit codes and the domain errors that carry them.

Services raise these; the CLI edge (``casectl.cli.app``) turns them into one
line on stderr and the exit code. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    NOT_ALLOWED = 4
    CONFLICT = 5
    INVALID = 6


class CasectlError(Exception):
    """A failure the user can act on: one message, one exit code."""

    code: ExitCode = ExitCode.ERROR

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
