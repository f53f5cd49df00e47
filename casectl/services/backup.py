"""Online backup, verified; restore that refuses to overwrite by accident."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from ..errors import Conflict, InvalidInput, NotFound
from ..store import maintenance
from ..store.migrations import MIGRATIONS
from . import integrity


def verify(path: Path) -> dict:
    """Integrity, foreign keys, hash chains and statuses of a database file (read-only)."""
    try:
        conn = maintenance.open_readonly(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise InvalidInput(f"{path} is not a SQLite database ({e})") from None
    try:
        if version == 0 or version > len(MIGRATIONS):
            raise InvalidInput(f"{path} is not a casectl database this version can read (schema {version})")
        return integrity.check(conn)
    except sqlite3.DatabaseError as e:
        raise InvalidInput(f"{path} is damaged ({e})") from None
    finally:
        conn.close()


def backup(conn: sqlite3.Connection, dest: Path, *, force: bool = False) -> dict:
    dest = Path(dest)
    if dest.is_dir():
        raise InvalidInput(f"{dest} is a directory; give a file name for the backup")
    if dest.exists() and not force:
        raise Conflict(f"{dest} exists; add --force to replace it")
    if not dest.parent.exists():
        raise NotFound(f"no directory {dest.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        maintenance.backup_to(conn, tmp_path)
        result = verify(tmp_path)
        if not result["ok"]:
            raise InvalidInput(f"the backup did not verify: {result['problems'][0]}", details=result["problems"])
        os.replace(tmp_path, dest)  # never a half-written backup under the final name
    finally:
        tmp_path.unlink(missing_ok=True)
    return {"backup": str(dest), "size": dest.stat().st_size, **result}


def restore(source: Path, target: Path, *, force: bool, connect) -> dict:
    """Restore `source` over `target`; refuses an existing target without force."""
    source = Path(source)
    if not source.is_file():
        raise NotFound(f"no backup file {source}")
    result = verify(source)
    if not result["ok"]:
        raise InvalidInput(f"{source} does not verify: {result['problems'][0]}", details=result["problems"])
    if target.exists() and not force:
        raise Conflict(f"{target} exists; add --force to overwrite it with {source}")
    conn = connect(target, create=True)
    try:
        maintenance.restore_from(source, conn)
    finally:
        conn.close()
    return {"restored": str(target), "from": str(source), **result}
