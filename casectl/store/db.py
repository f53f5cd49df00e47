"""Opening the database and running one command's transaction.

The connection is in autocommit mode and every write goes through `write()`,
which takes the write lock up front (BEGIN IMMEDIATE) so that two writers
queue on SQLite's busy timeout instead of failing half-way through.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

from ..errors import CasectlError, Conflict, NotFound
from .migrations import MIGRATIONS

DEFAULT_BUSY_TIMEOUT = 10.0


def busy_timeout() -> float:
    """CASECTL_BUSY_TIMEOUT read here, for store/maintenance.py only: connections take
    theirs from `connect(busy_timeout=...)` (the CLI reads the variable once, in its settings).
    Remove once maintenance.py takes the timeout from the connection it is given."""
    raw = os.environ.get("CASECTL_BUSY_TIMEOUT")
    try:
        return float(raw) if raw else DEFAULT_BUSY_TIMEOUT
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT


def _busy_timeout_of(conn: sqlite3.Connection) -> float:
    return conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000


def inserted_id(cur: sqlite3.Cursor) -> int:
    """The rowid an INSERT just gave its row (sqlite3 types it optional: only an insert sets it)."""
    if cur.lastrowid is None:  # not after an INSERT: a bug in the caller
        raise RuntimeError("no row was inserted")
    return cur.lastrowid


def _create_private_file(path: Path) -> None:
    # The file holds personal data: readable by its owner only, from birth.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


def connect(
    path: str | Path, *, create: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> sqlite3.Connection:
    """Connect, set pragmas and apply pending migrations.

    A missing file is NotFound unless `create` is set (only `casectl init`).
    A writer waits up to `busy_timeout` seconds for another to finish.
    """
    path = Path(path)
    if path.is_dir():
        raise NotFound(f"{path} is a directory, not a casectl database")
    new = not path.exists()
    if new and not create:
        raise NotFound(f"no database at {path}; create one with `casectl init --db {path}`")
    if new:
        _create_private_file(path)
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise CasectlError(f"{path} is not a usable casectl database ({e})") from None
    if version > len(MIGRATIONS):
        raise CasectlError(
            f"{path} was written by a newer casectl (schema {version}, this one knows {len(MIGRATIONS)}); upgrade casectl"
        )
    if version < len(MIGRATIONS):
        if not create and version == 0 and _has_tables(conn):
            raise CasectlError(f"{path} is a SQLite database but not a casectl one")
        migrate(conn)
    return conn


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations, each recorded in `_migrations`. Returns their names."""
    from datetime import datetime

    import sqlite_utils  # only when there is something to migrate

    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    db = sqlite_utils.Database(conn)
    applied: list[str] = []
    with write(conn):
        # Re-read under the lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        migrations = db.table("_migrations")
        if not migrations.exists():
            migrations.create({"name": str, "applied_at": str}, pk="name")
        for name, fn in MIGRATIONS[version:]:
            fn(db)
            migrations.insert({"name": name, "applied_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
            applied.append(name)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    return applied


def _is_locked(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One command = one transaction; everything or nothing is written."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if _is_locked(e):
            raise Conflict(
                f"the database stayed locked by another writer for {_busy_timeout_of(conn):g}s; try again "
                "(or raise CASECTL_BUSY_TIMEOUT)"
            ) from None
        raise
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if not conn.in_transaction:  # a dry run rolled back on purpose
        return
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if _is_locked(e):
            raise Conflict("the database stayed locked while committing; nothing was written, try again") from None
        raise


def rollback(conn: sqlite3.Connection) -> None:
    """Abandon the current transaction on purpose (dry runs)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextlib.contextmanager
def read(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A consistent snapshot for commands that read several tables."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
