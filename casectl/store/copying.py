"""The SQL of `db copy` (services/copy.py): table by table, in batches, on either backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from .dialect import dialect

BATCH = 2000


def count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def custom_rows(conn: sqlite3.Connection) -> int:
    """Workflows and views someone added (built-ins come with every database)."""
    workflows = conn.execute("SELECT count(*) FROM workflows WHERE builtin = 0").fetchone()[0]
    views = conn.execute("SELECT count(*) FROM views WHERE coalesce(builtin, 0) = 0").fetchone()[0]
    return workflows + views


def clear_for_copy(conn: sqlite3.Connection) -> None:
    """What a fresh database holds of its own, replaced by the source's: its settings (instance
    id and chain key fingerprint), its empty seal, the built-in workflows and views it recorded."""
    for table in ("chain_seal", "chain_heads", "settings", "views", "workflows", "case_tags"):
        conn.execute(f"DELETE FROM {table}")


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    if dialect(conn) == "postgresql":
        sql = (
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position"
        )
        return [r[0] for r in conn.execute(sql, (table,))]
    return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def common_columns(src: sqlite3.Connection, dst: sqlite3.Connection, table: str) -> list[str]:
    theirs = set(columns(dst, table))
    return [c for c in columns(src, table) if c in theirs]


def batches(conn: sqlite3.Connection, table: str, cols: list[str]) -> Iterator[list[tuple]]:
    """The table's rows in id order where it has ids (a parent case before its children), in
    batches; memory stays flat (PostgreSQL: a server-side cursor; SQLite steps its statement)."""
    order = " ORDER BY id" if "id" in cols else ""
    sql = f"SELECT {', '.join(cols)} FROM {table}{order}"
    if dialect(conn) == "postgresql":
        with conn.raw.cursor(name=f"copy_{table}") as cur:  # type: ignore[attr-defined]
            cur.itersize = BATCH
            cur.execute(sql)
            while rows := cur.fetchmany(BATCH):
                yield [tuple(r) for r in rows]
        return
    cur = conn.execute(sql)
    while rows := cur.fetchmany(BATCH):
        yield [tuple(r) for r in rows]


def document_list(conn: sqlite3.Connection) -> list[tuple[str, int, str | None, str]]:
    rows = conn.execute("SELECT sha256, size, media_type, created_at FROM documents ORDER BY sha256")
    return [tuple(r) for r in rows]
