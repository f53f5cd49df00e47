"""Migrations: a blank database gets the whole schema; old ones are brought up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from casectl.store import connect
from casectl.store.migrations import MIGRATIONS

from conftest import raw_connect

EXPECTED = Path(__file__).with_name("expected_schema.sql")

# PostgreSQL's catalog, described as sqlite_master describes SQLite's: every column, index, trigger and view.
PG_SCHEMA = """
SELECT 'column' AS type, table_name || '.' || column_name AS name,
       data_type || ' ' || is_nullable || coalesce(' DEFAULT ' || column_default, '') AS sql
  FROM information_schema.columns WHERE table_schema = current_schema()
UNION ALL
SELECT 'index', tablename || '.' || indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
UNION ALL
SELECT 'trigger', event_object_table || '.' || trigger_name || '.' || event_manipulation,
       action_timing || ' ' || action_orientation || ' ' || action_statement
  FROM information_schema.triggers WHERE trigger_schema = current_schema()
UNION ALL
SELECT 'view', viewname, definition FROM pg_views WHERE schemaname = current_schema()
ORDER BY 1, 2, 3
"""


def schema(conn: sqlite3.Connection) -> str:
    """Every table, index, trigger and view, as the database stores them, in a stable order."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        rows = conn.execute(PG_SCHEMA).fetchall()
    else:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
    return "\n".join(f"-- {t} {n}\n{sql};" for t, n, sql in rows) + "\n"


@pytest.mark.sqlite_only(reason="compares sqlite_master with expected_schema.sql (SQLite's DDL) and SQLite's PRAGMAs")
def test_blank_database_gets_the_whole_schema(db_path):
    conn = connect(db_path, create=True)
    assert schema(conn) == EXPECTED.read_text(), (
        "the schema changed: if on purpose, regenerate tests/expected_schema.sql with "
        "`cd tests && python -c 'import test_migrations as t; t.regenerate()'`"
    )
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")] == [n for n, _ in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrating_again_changes_nothing(db_path):
    connect(db_path, create=True).close()
    raw = raw_connect(db_path)
    try:
        before = schema(raw)
    finally:
        raw.close()
    assert before.count("\n") > 100  # the whole schema, not an empty answer
    conn = connect(db_path)
    assert schema(conn) == before


@pytest.mark.sqlite_only(
    reason="builds an old SQLite file at schema 1 by hand; a PostgreSQL database starts at the baseline (schema 12)"
)
def test_an_old_database_is_upgraded_without_losing_data(db_path, cli):
    # Build a database at schema 1 by hand, with a case in it.
    import sqlite_utils

    conn = sqlite3.connect(db_path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    MIGRATIONS[0][1](db)
    db["_migrations"].insert({"name": MIGRATIONS[0][0], "applied_at": "2026-01-01T00:00:00Z"})
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    old = connect(db_path)  # applies the rest
    assert old.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    old.close()
    cid = cli("create", "--workflow", "simple").stdout.strip()
    assert cli.json("show", cid, "--json")["status"] == "open"


def test_a_newer_database_is_refused(db_path, cli, backend):
    connect(db_path, create=True).close()
    conn = raw_connect(db_path)
    if backend == "sqlite":
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    else:  # PostgreSQL's schema version is the count of applied migrations
        conn.execute(
            "INSERT INTO _migrations (name, applied_at) VALUES ('9999_from_the_future', '2031-01-01T00:00:00Z')"
        )
    conn.commit()
    conn.close()
    r = cli("list", expect=7)
    assert "newer casectl" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.sqlite_only(reason="the subject is a SQLite file that is not casectl's, and one that is not SQLite")
def test_a_foreign_sqlite_file_is_refused(tmp_path, cli):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)")
    r = cli("list", "--db", str(other), expect=7)
    assert "not a casectl one" in r.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\x01not sqlite" * 500)
    r = cli("list", "--db", str(garbage), expect=7)
    assert "not a usable casectl database" in r.stderr


def regenerate() -> None:  # pragma: no cover - a maintenance helper
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        EXPECTED.write_text(schema(connect(Path(d) / "x.db", create=True)))
