"""Writing output files safely: a reader sees the old file or the new one,
never half of one, and a failure leaves no temporary file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import InvalidInput


def check_target(target: str | Path, option: str = "--output") -> Path:
    """The file an option names, refused (exit 6) when it is a directory or its folder is missing."""
    path = Path(target).expanduser()
    if path.is_dir():
        raise InvalidInput(f"{option} {target}: is a directory; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInput(f"{option} {target}: no directory {folder}; create it first")
    return path


@contextlib.contextmanager
def atomic_output(
    target: str | Path, *, option: str = "--output", binary: bool = True, encoding: str = "utf-8"
) -> Iterator[IO]:
    """Write to a temporary file beside `target`; on success fsync and rename it over `target`."""
    path = check_target(target, option)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise InvalidInput(f"{option} {target}: cannot write in {path.parent}: {e.strerror}") from None
    try:
        f: IO
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding, newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
