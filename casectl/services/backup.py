"""Online backup, verified; restore that refuses to overwrite by accident."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .. import files
from ..errors import Conflict, InvalidInput, NotFound
from ..store import db, maintenance
from ..store.migrations import MIGRATIONS
from . import integrity


def verify(path: Path, key_source: object) -> dict:
    """Integrity, foreign keys, hash chains and statuses of a database file (read-only),
    its chain verified with the key `key_source` finds (a chain.KeySource)."""
    try:
        conn = maintenance.open_readonly(path, key_source)
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
    """Copy the live database to `dest` and verify the copy before it takes the final name.

    Written like every casectl output (casectl.files): beside `dest` then renamed, never
    through a link, streamed into a device or pipe, mode 0600.
    """
    dest = Path(dest)
    if dest.is_dir() and not dest.is_symlink():
        raise InvalidInput(f"{dest} is a directory; give a file name for the backup")
    if not dest.is_symlink() and not dest.parent.exists():
        raise NotFound(f"no directory {dest.parent}")
    target = files.check_target(dest, "backup to")
    if dest.exists() and not (target.stream or target.fd is not None) and not force:
        raise Conflict(f"{dest} exists; add --force to replace it")
    with files.staged_file(target) as tmp_path:
        try:
            maintenance.backup_to(conn, tmp_path)
        except sqlite3.Error as e:
            raise db.explain(e, dest) or e from None
        result = verify(tmp_path, getattr(conn, "key_source", None))
        if not result["ok"]:
            raise InvalidInput(f"the backup did not verify: {result['problems'][0]}", details=result["problems"])
        size = tmp_path.stat().st_size
    return {"backup": str(dest), "size": size, **result}


def restore(source: Path, target: Path, *, force: bool, connect, key_source: object) -> dict:
    """Restore `source` over `target`; refuses an existing target without force."""
    source = Path(source)
    if not source.is_file():
        raise NotFound(f"no backup file {source}")
    result = verify(source, key_source)
    if not result["ok"]:
        raise InvalidInput(f"{source} does not verify: {result['problems'][0]}", details=result["problems"])
    if target.exists() and not force:
        raise Conflict(f"{target} exists; add --force to overwrite it with {source}")
    conn = connect(target, create=True, key_source=key_source)
    try:
        maintenance.restore_from(source, conn)
    finally:
        conn.close()
    return {"restored": str(target), "from": str(source), **result}
