"""Batched SQL: the lifecycle kernel's creation of many cases at once
(`lifecycle.insert_cases`, for `create` and `import` alike), the importer's
look-ups, and the read-only look-ups `casectl export --package` needs.

The kernel runs inside the caller's write transaction (BEGIN IMMEDIATE), so
nobody else can insert meanwhile: it may hand out case and subject ids itself
(max(id) + 1 ...) and insert whole batches a few hundred rows per statement.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from .dialect import dialect

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
    "parent_id",
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
    "status_since",
)


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """`json.JSONEncoder(**options).encode`, the same text, but with its C encoder made once
    instead of on every call (about half the time of a small object)."""
    encoder = json.JSONEncoder(**options)
    if c_make_encoder is None or encoder.indent is not None:
        return encoder.encode
    text = encode_basestring_ascii if encoder.ensure_ascii else encode_basestring
    iterencode = c_make_encoder(
        None,  # no circular-reference markers: a cycle still fails, as RecursionError
        encoder.default,
        text,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(o: Any) -> str:
        return text(o) if o.__class__ is str else "".join(iterencode(o, 0))

    return encode


# A case's data and registry_data as store.cases writes them (json.dumps(..., ensure_ascii=False, sort_keys=True)).
case_json = json_encoder(ensure_ascii=False, sort_keys=True)

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


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def next_ids(conn: sqlite3.Connection) -> tuple[int, int]:
    """The next free (case, subject) ids; valid while the caller holds the write lock."""
    from .chain import next_case_id  # never a purged case's id

    subject = conn.execute("SELECT coalesce(max(id), 0) FROM subjects").fetchone()[0]
    return next_case_id(conn), subject + 1


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


def log_refs(conn: sqlite3.Connection, rows: Sequence[tuple[str, int]]) -> None:
    insert_rows(conn, "temp.import_refs", ("ref", "line"), rows, verb="INSERT OR IGNORE")


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


_COPY_FROM = 50  # rows from which PostgreSQL takes them through COPY


def insert_rows(
    conn: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    verb: str = "INSERT",
    conflict: str = "",
) -> list[int]:
    """INSERT rows (tuples in `columns` order) with a few multi-row VALUES statements
    (`conflict`, an ON CONFLICT clause, follows each).

    Returns the rows' rowids (for a plain INSERT): one statement's rows take
    consecutive ones, so each statement's last rowid names them all.
    """
    ids: list[int] = []
    if not rows:
        return ids
    if dialect(conn) == "postgresql" and len(rows) >= _COPY_FROM:
        # PostgreSQL loads many rows fastest through COPY (triggers fire as for INSERT), and
        # upserts them as one statement over arrays. The ids are the rows' own: every bulk
        # caller numbers its rows (a row without an id returns none).
        from . import pg

        if verb == "INSERT" and not conflict:
            pg.copy_rows(conn, table, columns, rows)  # type: ignore[arg-type]
        else:
            pg.insert_arrays(conn, table, columns, rows, ignore=verb != "INSERT", conflict=conflict)  # type: ignore[arg-type]
        return [r[columns.index("id")] for r in rows] if "id" in columns else []
    width = len(columns)
    one = "(" + ",".join("?" * width) + ")"
    head = f"{verb} INTO {table} ({', '.join(columns)}) VALUES "
    step = _rows_per_statement(conn, width)
    full_sql = None
    for i in range(0, len(rows), step):
        chunk = rows[i : i + step]
        if len(chunk) == step:
            if full_sql is None:
                full_sql = head + ",".join([one] * step) + conflict
            sql = full_sql
        else:
            sql = head + ",".join([one] * len(chunk)) + conflict
        last = conn.execute(sql, list(chain.from_iterable(chunk))).lastrowid or 0
        ids.extend(range(last - len(chunk) + 1, last + 1))
    return ids


def insert_subjects(conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    insert_rows(conn, "subjects", SUBJECT_INSERT_COLUMNS, rows)


# The search rows of the cases from an id on, as the trigger case_search_insert writes each one.
_SEARCH_ROWS = (
    "INSERT INTO case_search (rowid, case_no, ref, name, email, dob) "
    "SELECT c.id, 'C-' || c.id, c.ref, s.name, s.email, s.dob FROM cases c "
    "LEFT JOIN subjects s ON s.id = c.subject_id WHERE c.id >= ? ORDER BY c.id"
)


_LARGE_FILL = 2000  # new cases from which the search rows are written with a larger FTS5 buffer
_FILL_HASHSIZE = 4 << 20


@contextlib.contextmanager
def search_rows_later(conn: sqlite3.Connection) -> Iterator[None]:
    """The cases inserted inside get their search rows when the block ends, with one INSERT ... SELECT,
    instead of one run of the trigger case_search_insert per row.

    While case_search_deferred holds a row (migration 0008; only ever inside this
    writer's transaction, so no other connection sees it) the trigger stands
    aside. A search row is a function of the case's ref and its subject's
    name, email and dob as they are now (the other triggers keep it so), so the
    rows written at the end are the ones the triggers would have left: any that
    an update trigger wrote meanwhile for a new case are replaced. Nested
    blocks leave the work to the outermost; a block that fails writes nothing
    (its transaction is rolled back).
    """
    if not conn.in_transaction:
        raise RuntimeError("search_rows_later runs inside the caller's write transaction")
    if dialect(conn) == "postgresql":
        # The same, by a setting of this transaction that the insert trigger's WHEN reads.
        if conn.execute("SELECT current_setting('casectl.search_later', true)").fetchone()[0] == "on":
            yield
            return
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM cases").fetchone()[0]
        conn.execute("SET LOCAL casectl.search_later = 'on'")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):  # an aborted transaction ends with it anyway
                conn.execute("SET LOCAL casectl.search_later = 'off'")
        write_search_rows(conn, first)
        return
    if conn.execute("SELECT 1 FROM case_search_deferred").fetchone() is not None:
        yield
        return
    first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM cases").fetchone()[0]
    conn.execute("INSERT INTO case_search_deferred (id) VALUES (1)")
    try:
        yield
    finally:
        conn.execute("DELETE FROM case_search_deferred")
    write_search_rows(conn, first)


_PG_SEARCH_ROWS = (
    "INSERT INTO case_search (id, case_no, ref, name, email, dob, doc) "
    "SELECT c.id, 'C-' || c.id, c.ref, s.name, s.email, s.dob, "
    "casectl_search_doc('C-' || c.id, c.ref, s.name, s.email, s.dob) FROM cases c "
    "LEFT JOIN subjects s ON s.id = c.subject_id WHERE c.id >= ?"
)


def write_search_rows(conn: sqlite3.Connection, first: int) -> None:
    """The search rows of the cases numbered from `first` on, in place of any they have."""
    if dialect(conn) == "postgresql":
        conn.execute("DELETE FROM case_search WHERE id >= ?", (first,))
        conn.execute(_PG_SEARCH_ROWS, (first,))
        return
    conn.execute("DELETE FROM case_search WHERE rowid >= ?", (first,))
    last = conn.execute("SELECT coalesce(max(id), 0) FROM cases").fetchone()[0]
    if last - first < _LARGE_FILL:
        conn.execute(_SEARCH_ROWS, (first,))
        return
    # FTS5 holds new index entries in memory up to its 'hashsize' (1 MiB unless set), then writes
    # them out as a segment and merges segments as they pile up: for one statement of many rows a
    # larger buffer means far fewer merges (a third fewer instructions for 30,000 cases). The
    # setting is stored in the table's config; it is put back as it was before the block ends.
    old = conn.execute("SELECT v FROM case_search_config WHERE k = 'hashsize'").fetchone()
    try:
        conn.execute("INSERT INTO case_search (case_search, rank) VALUES ('hashsize', ?)", (_FILL_HASHSIZE,))
    except sqlite3.OperationalError:  # an SQLite without the setting: the usual buffer
        conn.execute(_SEARCH_ROWS, (first,))
        return
    try:
        conn.execute(_SEARCH_ROWS, (first,))
    finally:
        if old is not None:
            conn.execute("INSERT INTO case_search (case_search, rank) VALUES ('hashsize', ?)", old)
        else:
            conn.execute("DELETE FROM case_search_config WHERE k = 'hashsize'")  # unset, as it was


def insert_cases(conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    """New case rows (CASE_INSERT_COLUMNS order, ids above every case's), with their search rows
    (written at the end of the outermost `search_rows_later` block, this call's own if none)."""
    if rows:
        with search_rows_later(conn):
            insert_rows(conn, "cases", CASE_INSERT_COLUMNS, rows)


def insert_tags(conn: sqlite3.Connection, rows: Sequence[tuple[int, str]], *, new_cases: bool = False) -> None:
    """Tags of cases; `new_cases`: of cases inserted in this transaction, each (case, tag) once,
    so nothing can collide and they go in as plain rows (COPY on PostgreSQL)."""
    insert_rows(conn, "case_tags", ("case_id", "tag"), rows, verb="INSERT" if new_cases else "INSERT OR IGNORE")


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
