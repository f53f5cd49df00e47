"""Writing output files safely.

Every file casectl writes (exports, reports, documents, backups, packages,
rejects) goes through here:

- a regular file is written to a temporary file beside it, flushed to disk and
  renamed over it, so a reader, or a kill at any moment, sees the old file or
  the new one, never half of one;
- a symbolic link at the final name is refused: casectl never writes through
  one (`/dev/stdout`, `/dev/stderr` and `/dev/fd/N` name the command's own
  streams and are written to them);
- a character device or a FIFO (`/dev/null`, `/dev/full`, a terminal, a pipe)
  is written as a stream and never replaced by a regular file;
- every file is created with mode 0600: they hold personal data;
- temporary files carry a recognisable name, `.casectl-tmp-<pid>-<host>-...`,
  and those whose process is gone (killed half-way) are removed by the next
  write into the same directory.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import EnvironmentProblem, InvalidInput, describe

TMP_PREFIX = ".casectl-tmp-"
# The command's own streams, opened by descriptor (the shell may have pointed them at a file).
_STREAM_ALIASES = {"/dev/stdout": 1, "/dev/stderr": 2}
_FD_ALIAS = re.compile(r"^/(?:dev/fd|proc/self/fd)/(\d+)$")


@dataclass(frozen=True)
class Target:
    """Where an option says to write: a regular file (written atomically) or a stream."""

    path: Path
    option: str
    given: str
    fd: int | None = None  # one of the command's descriptors (/dev/stdout, /dev/fd/N)
    stream: bool = False  # a character device or FIFO: opened and written, never replaced

    @property
    def label(self) -> str:
        return f"{self.option} {self.given}"


# Files no output may replace: the database and its side files, the file being read.
_protected: dict[str, str] = {}


def protect(path: str | Path, what: str) -> None:
    """Refuse, from now on in this process, to write over `path` (e.g. "the database")."""
    _protected[os.path.realpath(path)] = what


def protect_database(path: str | Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        protect(f"{path}{suffix}", "the database" if not suffix else f"the database's {suffix[1:]} file")


def _guarded(path: Path, label: str) -> None:
    what = _protected.get(os.path.realpath(path))
    if what is not None:
        raise InvalidInput(f"{label}: is {what}; writing there would destroy it, give another file name")


def check_target(target: str | Path, option: str = "--output") -> Target:
    """The file an option names; refused (exit 6) when it is a directory, a link, a block device
    or socket, the database or the file being read, or its folder is missing."""
    given = str(target)
    fd = _stream_alias(given)
    if fd is not None:
        return Target(Path(given), option, given, fd=fd)
    path = Path(target).expanduser()
    _guarded(path, f"{option} {given}")
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _problem(e, f"{option} {given}") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise InvalidInput(
                f"{option} {given}: is a symbolic link; casectl does not write through links, give the real path"
            )
        if stat.S_ISDIR(st.st_mode):
            raise InvalidInput(f"{option} {given}: is a directory; give a file name")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            return Target(path, option, given, stream=True)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{option} {given}: is not a regular file, a character device or a pipe")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInput(f"{option} {given}: cannot write it: no directory {folder}; create it first")
    return Target(path, option, given)


def _stream_alias(given: str) -> int | None:
    name = os.path.normpath(given)
    if name in _STREAM_ALIASES:
        return _STREAM_ALIASES[name]
    m = _FD_ALIAS.match(name)
    return int(m.group(1)) if m else None


def _problem(e: OSError, label: str) -> Exception:
    """An OSError while writing `label`, as one line; unknown errors stay as they are (a bug).
    (The file it names may be the temporary one: the label says what the user asked for.)"""
    what = describe(e)
    return e if what is None else EnvironmentProblem(f"{label}: {what}")


def _write_problem(e: OSError, t: Target) -> Exception:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "the device is full" if t.stream or t.fd is not None else "the disk is full"
        tail = "" if t.stream or t.fd is not None else f"; nothing was written to {t.given}"
        return EnvironmentProblem(f"{t.label}: {what} ({e.strerror}){tail}")
    found = _problem(e, t.label)
    if isinstance(found, EnvironmentProblem) and not (t.stream or t.fd is not None):
        found = EnvironmentProblem(f"{found.message}; nothing was written to {t.given}")
    return found


# --- temporary files and the clean-up of those a killed process left ---------


def host_tag() -> str:
    # A process id means something on its own host only (shared or network directories).
    return f"{zlib.crc32(os.uname().nodename.encode()):08x}"


def _safe(name: str) -> str:
    # The temporary name carries the target's, made harmless for file systems and SQLite URIs.
    return re.sub(r"[^A-Za-z0-9._]", "_", name)[-60:]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process, alive
        return True
    try:  # a killed process that nobody has reaped yet still answers kill(0)
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def sweep(folder: str | Path) -> list[str]:
    """Remove casectl's temporary files in `folder` whose process is gone; returns their names."""
    removed: list[str] = []
    host = host_tag()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TMP_PREFIX):
            continue
        parts = entry.name[len(TMP_PREFIX) :].split("-", 2)
        if len(parts) < 3 or not parts[0].isdigit() or parts[1] != host or _alive(int(parts[0])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            pass
    return removed


def private_temp(folder: str | Path | None = None, *, name: str = "", suffix: str = "") -> tuple[int, str]:
    """A new temporary file (mode 0600) in `folder` (default: the system's), named so that the next
    run removes it if this process is killed. Returns (fd, path) like `tempfile.mkstemp`."""
    folder = str(folder) if folder is not None else tempfile.gettempdir()
    sweep(folder)
    prefix = f"{TMP_PREFIX}{os.getpid()}-{host_tag()}-"
    return tempfile.mkstemp(prefix=prefix, suffix=f"-{_safe(name)}{suffix}" if name else suffix, dir=folder)


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk, or a power cut could bring the old name back.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- writers ------------------------------------------------------------------


class _Stream(io.RawIOBase):
    """A device or pipe, written in order: it cannot seek, whatever lseek says (/dev/null
    "seeks"), so writers that would go back (zip) write a stream format instead."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b) -> int:
        return os.write(self._fd, b)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


def _open_stream(t: Target) -> int:
    try:
        if t.fd is not None:
            return os.dup(t.fd)
        return os.open(t.path, os.O_WRONLY | os.O_NOCTTY)
    except OSError as e:
        if e.errno == errno.EBADF:
            raise InvalidInput(f"{t.label}: no such open file descriptor") from None
        raise _problem(e, t.label) from None


@contextlib.contextmanager
def atomic_output(
    target: str | Path | Target, *, option: str = "--output", binary: bool = True, encoding: str = "utf-8"
) -> Iterator[IO]:
    """Write `target`: a regular file through a temporary file beside it, renamed over it once
    complete; a device or pipe as a stream. Disk full, read-only or permission problems are one line
    (exit 7) and leave the old file as it was."""
    t = target if isinstance(target, Target) else check_target(target, option)
    f: IO
    if t.stream or t.fd is not None:
        if t.fd in (1, 2):
            import sys  # what the command printed before must come first

            with contextlib.suppress(Exception):
                (sys.stdout if t.fd == 1 else sys.stderr).flush()
        raw = _Stream(_open_stream(t))
        try:
            buffered = io.BufferedWriter(raw)
            with buffered if binary else io.TextIOWrapper(buffered, encoding=encoding, newline="") as f:
                yield f
                f.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _write_problem(e, t) from None
        return
    folder = t.path.parent if str(t.path.parent) else Path(".")
    try:
        fd, tmp = private_temp(folder, name=t.path.name)
    except OSError as e:
        raise _write_problem(e, t) from None
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding, newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, t.path)
        _fsync_dir(folder)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _write_problem(e, t) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_file(target: str | Path | Target, *, option: str = "--output") -> Iterator[Path]:
    """A temporary path for a writer that needs a file name (SQLite's backup, the importer's rejects):
    on success it is renamed over `target`, or copied into it when `target` is a stream."""
    t = target if isinstance(target, Target) else check_target(target, option)
    streamed = t.stream or t.fd is not None
    folder = Path(tempfile.gettempdir()) if streamed else (t.path.parent if str(t.path.parent) else Path("."))
    try:
        fd, tmp = private_temp(folder, name=t.path.name)
        os.close(fd)
    except OSError as e:
        raise _write_problem(e, t) from None
    try:
        yield Path(tmp)
        if streamed:
            with open(tmp, "rb") as src, atomic_output(t) as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            return
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, t.path)
        except OSError as e:
            raise _write_problem(e, t) from None
        _fsync_dir(folder)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # SQLite may leave its journal beside a file it wrote.
        with contextlib.suppress(OSError):
            os.unlink(tmp + "-journal")
