"""Bulk SQL for `casectl import` (batched look-ups and executemany inserts)
and the read-only look-ups `casectl export --package` needs.

The importer runs inside one write transaction (BEGIN IMMEDIATE), so nobody
else can insert meanwhile: it may hand out ids itself (max(id) + 1 ...) and
insert whole batches with executemany instead of one statement per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

# SQLite's default limit on host parameters is 32766 (>= 3.32); stay far below.
_CHUNK = 500

CASE_INSERT_COLUMNS = (
    "id",
    "ref",
    "workflow",
    "workflow_version",
    "status",
    "final",
    "subject_id",
    "data",
    "registry_data",
    "assignee",
    "team",
    "priority",
    "created_at",
    "updated_at",
    "origin",
    "created_by",
    "last_editor",
    "due_at",
    "sla_paused_at",
    "sla_remaining",
)
SUBJECT_INSERT_COLUMNS = (
    "id",
    "ref",
    "name",
    "email",
    "email_key",
    "dob",
    "country",
    "entity_type",
    "data",
    "created_at",
    "updated_at",
)
EVENT_INSERT_COLUMNS = (
    "id",
    "case_id",
    "at",
    "actor",
    "kind",
    "action",
    "from_status",
    "to_status",
    "reason",
    "data",
    "prev_hash",
    "hash",
)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def next_ids(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """The next free (case, subject, event) ids; valid while the caller holds the write lock."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM cases), (SELECT coalesce(max(id), 0) FROM subjects), "
        "(SELECT coalesce(max(id), 0) FROM events)"
    ).fetchone()
    return row[0] + 1, row[1] + 1, row[2] + 1


# --- refs seen in this file (duplicates inside one import) -----------------------


def start_ref_log(conn: sqlite3.Connection) -> None:
    """A TEMP table of the refs read so far: the file may be far larger than memory."""
    conn.execute("DROP TABLE IF EXISTS temp.import_refs")
    conn.execute("CREATE TEMP TABLE import_refs (ref TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID")


def seen_refs(conn: sqlite3.Connection, refs: Sequence[str]) -> dict[str, int]:
    """ref -> the line it was first seen on, for the refs already logged."""
    found: dict[str, int] = {}
    for chunk in _chunks(refs):
        sql = f"SELECT ref, line FROM temp.import_refs WHERE ref IN ({','.join('?' * len(chunk))})"
        found.update(conn.execute(sql, chunk).fetchall())
    return found


def log_refs(conn: sqlite3.Connection, rows: Iterable[tuple[str, int]]) -> None:
    conn.executemany("INSERT OR IGNORE INTO temp.import_refs (ref, line) VALUES (?, ?)", rows)


def end_ref_log(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS temp.import_refs")


# --- look-ups -------------------------------------------------------------------


def case_ids_for_refs(conn: sqlite3.Connection, refs: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(refs):
        sql = f"SELECT ref, id FROM cases WHERE ref IN ({','.join('?' * len(chunk))})"
        found.update(conn.execute(sql, chunk).fetchall())
    return found


_SUBJECT_FIELDS = "id, ref, name, email, email_key, dob, country, entity_type"


def subjects_by_ref(conn: sqlite3.Connection, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(refs):
        sql = f"SELECT {_SUBJECT_FIELDS} FROM subjects WHERE ref IN ({','.join('?' * len(chunk))})"
        for r in conn.execute(sql, chunk):
            found[r["ref"]] = dict(r)
    return found


def subjects_by_email_key(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(keys):
        sql = f"SELECT {_SUBJECT_FIELDS} FROM subjects WHERE email_key IN ({','.join('?' * len(chunk))})"
        for r in conn.execute(sql, chunk):
            found[r["email_key"]] = dict(r)
    return found


# --- inserts --------------------------------------------------------------------
#
# Many rows per INSERT statement, not executemany: the cases table has triggers
# (RAISE(ABORT) and the full-text one), so every statement that inserts into it
# keeps a statement journal to undo itself, and that journal copies each page
# the statement touches (with ~20 indexes, dozens of pages). executemany runs one
# statement per row: a statement journal per row, spilled to a temporary file.
# One statement per few hundred rows journals each page once: about 4x faster,
# with the same rows, the same triggers and the same constraints.

_MAX_ROWS_PER_STATEMENT = 500


def _rows_per_statement(conn: sqlite3.Connection, width: int) -> int:
    try:
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        limit = 999  # the oldest default
    return max(1, min(_MAX_ROWS_PER_STATEMENT, limit // width))


def insert_rows(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, verb: str = "INSERT"
) -> None:
    """INSERT rows (tuples in `columns` order) with a few multi-row VALUES statements."""
    if not rows:
        return
    width = len(columns)
    one = "(" + ",".join("?" * width) + ")"
    head = f"{verb} INTO {table} ({', '.join(columns)}) VALUES "
    step = _rows_per_statement(conn, width)
    full_sql = None
    for i in range(0, len(rows), step):
        chunk = rows[i : i + step]
        if len(chunk) == step:
            if full_sql is None:
                full_sql = head + ",".join([one] * step)
            sql = full_sql
        else:
            sql = head + ",".join([one] * len(chunk))
        conn.execute(sql, list(chain.from_iterable(chunk)))


def insert_subjects(conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    insert_rows(conn, "subjects", SUBJECT_INSERT_COLUMNS, rows)


def insert_cases(conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    insert_rows(conn, "cases", CASE_INSERT_COLUMNS, rows)


def insert_tags(conn: sqlite3.Connection, rows: Sequence[tuple[int, str]]) -> None:
    insert_rows(conn, "case_tags", ("case_id", "tag"), rows, verb="INSERT OR IGNORE")


def insert_events(conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    insert_rows(conn, "events", EVENT_INSERT_COLUMNS, rows)


# --- export: a case's data package ----------------------------------------------


def attachments_of(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    """A case's attached documents (without their content), oldest first."""
    sql = (
        "SELECT a.id, a.block_id, b.name AS block, a.sha256, a.filename, a.media_type, a.size, a.created_at "
        "FROM attachments a LEFT JOIN blocks b ON b.id = a.block_id WHERE a.case_id = ? ORDER BY a.id"
    )
    return [dict(r) for r in conn.execute(sql, (case_id,))]


def document_content(conn: sqlite3.Connection, sha256: str) -> bytes | None:
    row = conn.execute("SELECT content FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
    return bytes(row[0]) if row else None
