"""Opening the database and running one command's transaction.

The connection is in autocommit mode and every write goes through `write()`,
which takes the write lock up front (BEGIN IMMEDIATE) so that two writers
queue on SQLite's busy timeout instead of failing half-way through.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

from ..errors import CasectlError, Conflict, EnvironmentProblem, NotAllowed, NotFound
from .chain import KeySource
from .dialect import dialect, is_postgres
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
    if dialect(conn) == "postgresql":
        return getattr(conn, "busy_timeout", DEFAULT_BUSY_TIMEOUT)
    return conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000


def inserted_id(cur: sqlite3.Cursor) -> int:
    """The rowid an INSERT just gave its row (sqlite3 types it optional: only an insert sets it)."""
    if cur.lastrowid is None:  # not after an INSERT: a bug in the caller
        raise RuntimeError("no row was inserted")
    return cur.lastrowid


class Connection(sqlite3.Connection):
    """A casectl connection: it knows its file, and why it could only be opened read-only."""

    dialect = "sqlite"
    db_path: str = ""
    read_only: str | None = None  # why writes are impossible (a read-only file system, ...), or None
    chain_key: object = None  # the chain key once store.chain has read it (a chain.Key)
    key_source: object = None  # where store.chain looks for it (a chain.KeySource)


def _create_private_file(path: Path) -> None:
    # The file holds personal data: readable by its owner only, from birth.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    except OSError as e:
        raise EnvironmentProblem(f"cannot create the database {path}: {e.strerror}") from None
    os.close(fd)


def connect(
    path: str | Path,
    *,
    create: bool = False,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    key_source: KeySource | None = None,
) -> sqlite3.Connection:
    """Connect, set pragmas and apply pending migrations.

    A missing or empty file is NotFound unless `create` is set (only `casectl init`
    makes a database). A writer waits up to `busy_timeout` seconds for another to
    finish. A file this process may not write (a read-only file system or
    directory, a file without write permission) is opened read-only: reading
    commands work, writing ones fail with one line (exit 7).

    A PostgreSQL connection string opens that database instead (store/pg.py).
    """
    if is_postgres(path):
        return _connect_postgres(str(path), create=create, busy_timeout=busy_timeout, key_source=key_source)
    path = Path(path)
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise EnvironmentProblem(f"cannot reach the database {path}: {e.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise NotFound(f"{path} is a directory, not a casectl database")
    if st is None and not create:
        raise NotFound(f"no database at {path}; create one with `casectl init --db {path}`")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise EnvironmentProblem(f"{path} is not a regular file, so not a casectl database; give the right --db")
    if st is not None and not os.access(path, os.R_OK):
        raise EnvironmentProblem(f"cannot read the database {path}: permission denied for this user")
    if st is not None and st.st_size == 0 and not create and not _wal_has_data(path):
        raise NotFound(
            f"{path} is an empty file, not a casectl database; run `casectl init --db {path}` to make it one"
        )
    if st is None:
        _create_private_file(path)
    conn, version = _open(path, None if st is None else _read_only_reason(path), busy_timeout)
    # Callers without settings (scripts, tests) get the chain key from the environment as the CLI would.
    conn.key_source = key_source or KeySource.from_environ(os.environ)
    if version > len(MIGRATIONS):
        raise EnvironmentProblem(
            f"{path} was written by a newer casectl (schema {version}, this one knows {len(MIGRATIONS)}); upgrade casectl"
        )
    if version < len(MIGRATIONS):
        if version == 0 and not create and _has_tables(conn):
            raise EnvironmentProblem(f"{path} is a SQLite database but not a casectl one; give the right --db")
        if version == 0 and not create:
            raise NotFound(
                f"{path} is not a casectl database (it holds no tables); run `casectl init --db {path}` to make it one"
            )
        if conn.read_only:
            raise EnvironmentProblem(
                f"{path} needs upgrading to schema {len(MIGRATIONS)} (it has {version}) but is read-only "
                f"({conn.read_only}); run any command once with write access"
            )
        try:
            migrate(conn)
        except sqlite3.Error as e:
            raise explain(e, path) or e from None
    return conn


def _connect_postgres(
    url: str, *, create: bool, busy_timeout: float, key_source: KeySource | None
) -> sqlite3.Connection:
    from . import pg

    conn = pg.connect(url, busy_timeout=busy_timeout)
    conn.key_source = key_source or KeySource.from_environ(os.environ)
    where = conn.db_path
    try:
        version = pg.schema_version(conn)
        if version > len(MIGRATIONS):
            raise EnvironmentProblem(
                f"{where} was written by a newer casectl (schema {version}, this one knows {len(MIGRATIONS)}); "
                "upgrade casectl"
            )
        if version == 0 and not create:
            if pg.has_tables(conn):
                raise EnvironmentProblem(f"{where} is a PostgreSQL database but not a casectl one; give the right --db")
            raise NotFound(
                f"{where} is not a casectl database (it holds no tables); run `casectl init --db {where}` to make it one"
            )
        conn.fresh = version == 0
        if version < len(MIGRATIONS):
            from .pg_migrate import migrate as migrate_postgres

            with write(conn):  # type: ignore[arg-type]
                migrate_postgres(conn)
    except BaseException:
        conn.close()
        raise
    return conn  # type: ignore[return-value]


def _wal_has_data(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except OSError:
        return False


def _read_only_reason(path: Path) -> str | None:
    """Why this process cannot write the database, or None. (Root may write a file without write
    permission, so access() is asked, not the mode bits.)"""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "its file system is mounted read-only"
    except OSError:
        pass
    if not os.access(path, os.W_OK):
        return "the file is not writable by this user"
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        # WAL mode writes two files beside the database; if they are there and writable, that is enough.
        side = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        if not all(p.exists() and os.access(p, os.W_OK) for p in side):
            return f"its directory {folder} is not writable by this user"
    return None


def _open(path: Path, read_only: str | None, busy_timeout: float) -> tuple[Connection, int]:
    """The connection and the schema version; read-only when it must be (see connect)."""
    uri = path.absolute().as_uri()
    candidates: list[tuple[str, bool]] = []
    if read_only is None:
        candidates.append((str(path), False))
    # A read-only WAL database opens with mode=ro when its -shm file can be used; when it cannot
    # be created (a read-only directory) nobody can be writing it, so it is read as immutable.
    candidates += [(f"{uri}?mode=ro", True), (f"{uri}?mode=ro&immutable=1", True)]
    for i, (target, uri_mode) in enumerate(candidates):
        conn: Connection | None = None
        if target.endswith("immutable=1") and _wal_has_data(path):
            # Read as immutable, SQLite would ignore the changes still in the log: stale, silently.
            raise EnvironmentProblem(
                f"cannot read {path} as this user: recent changes are in its write-ahead log ({path}-wal), "
                "which this user may not use; let its owner run a casectl command on it first"
            )
        try:
            conn = sqlite3.connect(
                target,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=uri_mode,
                factory=Connection,
            )
            conn.row_factory = sqlite3.Row
            conn.db_path = str(path)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if uri_mode:
                conn.read_only = read_only or "this user may not write it"
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn, version
        except sqlite3.Error as e:
            if conn is not None:
                conn.close()
            name = getattr(e, "sqlite_errorname", "") or ""
            if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) and i + 1 < len(candidates):
                if not uri_mode:
                    read_only = f"writing it failed: {e}"
                continue
            problem = explain(e, path)
            if isinstance(problem, EnvironmentProblem) and name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
                problem = EnvironmentProblem(f"{path} is not a usable casectl database ({e}); {_DAMAGED_HINT}")
            raise problem or EnvironmentProblem(f"{path} is not a usable casectl database ({e})") from None
    raise AssertionError("unreachable")  # the last candidate either returns or raises


_DAMAGED_HINT = "give the right --db, or restore a backup with `casectl db restore`"


def explain(e: sqlite3.Error, path: str | Path | None) -> CasectlError | None:
    """A SQLite error that the machine or another program caused, as one line and its exit code:
    locked (5), read-only, disk full, I/O error, damaged file (7). None for any other: a bug."""
    name = getattr(e, "sqlite_errorname", "") or ""
    where = f"the database {path}" if path else "the database"
    code = getattr(e, "pg_code", None) or ""
    if code.startswith(("08", "57P")):  # PostgreSQL: the connection or the server went away
        return EnvironmentProblem(
            f"lost the connection to {where} ({e}); the server rolls back what this command had not "
            "committed: run it again once the server is back"
        )
    if code == "42501":  # PostgreSQL: insufficient privilege
        return NotAllowed(
            f"your PostgreSQL role may not do this ({e}); nothing was written. "
            "Its rights come from `casectl db grant ROLE --as agent|lead|auditor`"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or (not name and _is_locked(e)):
        return Conflict(f"{where} is locked by another program; try again (or raise CASECTL_BUSY_TIMEOUT)")
    if name.startswith("SQLITE_READONLY"):
        return EnvironmentProblem(f"{where} is read-only ({e}); this command writes, so nothing was done")
    if name.startswith("SQLITE_FULL"):
        return EnvironmentProblem(f"the disk holding {where} is full ({e}); nothing was written")
    if name.startswith("SQLITE_IOERR"):
        return EnvironmentProblem(f"{where}: disk I/O error ({e}); check the disk, then `casectl db check`")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return EnvironmentProblem(f"{where} is damaged or not a database ({e}); {_DAMAGED_HINT}")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return EnvironmentProblem(f"cannot open {where} ({e}); check the permissions of the file and its directory")
    return None


def schema_version(conn: sqlite3.Connection) -> int:
    """How many migrations the database has had."""
    if dialect(conn) == "postgresql":
        from . import pg

        return pg.schema_version(conn)  # type: ignore[arg-type]
    return conn.execute("PRAGMA user_version").fetchone()[0]


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


def _is_locked(e: sqlite3.Error) -> bool:
    if getattr(e, "sqlite_errorname", "") == "SQLITE_BUSY":
        return True
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One command = one transaction; everything or nothing is written."""
    why = getattr(conn, "read_only", None)
    if why:
        raise EnvironmentProblem(
            f"{_path_of(conn) or 'the database'} is read-only ({why}): this command writes, so nothing was done "
            "(commands that only read, such as list and show, still work)"
        )
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if _is_locked(e):
            raise Conflict(
                f"the database stayed locked by another writer for {_busy_timeout_of(conn):g}s; try again "
                "(or raise CASECTL_BUSY_TIMEOUT)"
            ) from None
        raise explain(e, _path_of(conn)) or e from None
    try:
        yield conn
    except sqlite3.Error as e:
        _abandon(conn)
        raise explain(e, _path_of(conn)) or e from None
    except BaseException:
        _abandon(conn)
        raise
    if not conn.in_transaction:  # a dry run rolled back on purpose
        return
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as e:
        _abandon(conn)
        if _is_locked(e):
            raise Conflict("the database stayed locked while committing; nothing was written, try again") from None
        raise explain(e, _path_of(conn)) or e from None


def _abandon(conn: sqlite3.Connection) -> None:
    # SQLite may have rolled back already (a full disk, an I/O error): that is fine too.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _path_of(conn: sqlite3.Connection) -> str:
    return getattr(conn, "db_path", "")


def rollback(conn: sqlite3.Connection) -> None:
    """Abandon the current transaction on purpose (dry runs)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextlib.contextmanager
def savepoint(conn: sqlite3.Connection, name: str = "step") -> Iterator[sqlite3.Connection]:
    """Part of a transaction that fails alone: on an exception what it wrote is undone (and the
    exception goes on); the rest of the transaction stands."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


@contextlib.contextmanager
def read(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A consistent snapshot for commands that read several tables."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
