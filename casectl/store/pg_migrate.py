"""Bringing a PostgreSQL database's schema up to date (store/pg_schema.py says what it is)."""

from __future__ import annotations

from ..errors import EnvironmentProblem
from .pg import PgConnection


def migrate(conn: PgConnection) -> list[str]:
    """Bring the schema up to date, inside the caller's write transaction: the baseline on an
    empty database (store/pg_schema.py), then each later migration's PostgreSQL SQL."""
    from datetime import UTC, datetime

    import psycopg

    from . import chain
    from .migrations import MIGRATIONS, PG_MIGRATIONS
    from .pg import as_sqlite_error, has_tables, schema_version
    from .pg_schema import BASELINE_VERSION, baseline_statements

    version = schema_version(conn)  # again, under the writer lock: another may have migrated
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    applied: list[str] = []
    if version == 0:
        if has_tables(conn):
            raise EnvironmentProblem(
                f"{conn.db_path} is a PostgreSQL database but not a casectl one; give the right --db"
            )
        try:
            conn.raw.execute(baseline_statements())
        except psycopg.Error as e:
            raise as_sqlite_error(e) from e
        for name, _ in MIGRATIONS[:BASELINE_VERSION]:
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now))
            applied.append(name)
        key = chain.make_key(conn)  # type: ignore[arg-type]
        chain.write_seal(conn, key, 0, 0)  # type: ignore[arg-type]
        version = BASELINE_VERSION
    for name, _ in MIGRATIONS[version:]:
        try:
            conn.raw.execute(PG_MIGRATIONS[name])
        except psycopg.Error as e:
            raise as_sqlite_error(e) from e
        conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now))
        applied.append(name)
    return applied
