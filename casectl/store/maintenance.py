"""Whole-database operations: online backup and restore, erasure and purge SQL."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from .db import Connection, busy_timeout, inserted_id
from .dialect import dialect


def backup_to(conn: sqlite3.Connection, dest: Path) -> None:
    """Copy the live database into `dest` with SQLite's online backup API.

    One step under a read transaction: a consistent snapshot while writers go on
    (WAL lets them). `dest` is created readable by its owner only.
    """
    fd = os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.close(fd)
    target = sqlite3.connect(dest)
    try:
        conn.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
    finally:
        target.close()


def restore_from(source: Path, conn: sqlite3.Connection) -> None:
    """Replace the live database's content with `source`'s (the backup API takes the write lock)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=busy_timeout())
    try:
        src.backup(conn)
    finally:
        src.close()
    conn.execute("PRAGMA journal_mode = WAL")


def open_readonly(path: Path, key_source: object = None) -> sqlite3.Connection:
    """Open a database file read-only (any name: the URI is escaped), to verify it with its chain key."""
    conn = sqlite3.connect(
        f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, isolation_level=None, factory=Connection
    )
    conn.row_factory = sqlite3.Row
    conn.key_source = key_source
    return conn


# --- erasure (redact) ---------------------------------------------------------


def subject_case_ids(conn: sqlite3.Connection, subject_id: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM cases WHERE subject_id = ? ORDER BY id", (subject_id,))]


def start_secure_erasure(conn: sqlite3.Connection) -> None:
    """From here on, SQLite overwrites what it deletes or replaces with zeros (this connection).
    (PostgreSQL: the old row versions go at the VACUUM flush_erased runs.)"""
    if dialect(conn) == "sqlite":
        conn.execute("PRAGMA secure_delete = ON")


def forget_erased_pages(conn: sqlite3.Connection) -> None:
    """Inside the erasure's transaction: rebuild the search index's segments, so the erased
    terms do not live on in old segments that only carry a 'deleted' mark."""
    if dialect(conn) == "sqlite":
        conn.execute("INSERT INTO case_search (case_search) VALUES ('optimize')")


def flush_erased(conn: sqlite3.Connection) -> None:
    """After the erasure committed: copy the log into the database file and empty it, so
    the erased values are not left in old frames of the write-ahead log.

    PostgreSQL keeps a changed row's old version until VACUUM reclaims it: the tables that
    held the erased values are vacuumed now (a role that may not vacuum them leaves it to
    autovacuum)."""
    if dialect(conn) == "postgresql":
        for table in ("subjects", "cases", "events", "event_texts", "notes", "case_search", "blocks", "activities"):
            with contextlib.suppress(sqlite3.Error):
                conn.execute(f"VACUUM {table}")
        return
    with contextlib.suppress(sqlite3.Error):  # another reader holds old frames: they go at its next checkpoint
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def erase_subject(conn: sqlite3.Connection, subject_id: int, *, at: str) -> None:
    conn.execute(
        "UPDATE subjects SET name = NULL, email = NULL, email_key = NULL, dob = NULL, ref = NULL, data = '{}', "
        "redacted_at = ?, updated_at = ? WHERE id = ?",
        (at, at, subject_id),
    )


def erase_case_content(conn: sqlite3.Connection, case_ids: list[int], *, at: str) -> dict[str, int]:
    """Blank what a case holds about its subject; returns counts of what was erased."""
    counts = {"blocks": 0, "attachments": 0, "notes": 0, "activities": 0, "outbox": 0}
    for case_id in case_ids:
        counts["blocks"] += conn.execute(
            "UPDATE blocks SET data = '{}', updated_at = ? WHERE case_id = ? AND data != '{}'", (at, case_id)
        ).rowcount
        counts["attachments"] += conn.execute("DELETE FROM attachments WHERE case_id = ?", (case_id,)).rowcount
        counts["notes"] += conn.execute(
            "UPDATE notes SET text = '[redacted]' WHERE case_id = ? AND text != '[redacted]'", (case_id,)
        ).rowcount
        counts["activities"] += conn.execute(
            "UPDATE activities SET result = '{}', updated_at = ? WHERE case_id = ? AND result != '{}'", (at, case_id)
        ).rowcount
        counts["appointments"] = (
            counts.get("appointments", 0)
            + conn.execute(
                "UPDATE appointments SET title = '[redacted]', with_whom = NULL WHERE case_id = ?", (case_id,)
            ).rowcount
        )
        counts["outbox"] += conn.execute(
            "UPDATE outbox SET payload = '{\"redacted\": true}', target = '[redacted]', updated_at = ?, "
            "status = CASE WHEN status IN ('pending', 'failed', 'sending') THEN 'cancelled' ELSE status END "
            "WHERE case_id = ?",
            (at, case_id),
        ).rowcount
    delete_orphan_documents(conn)
    return counts


def delete_orphan_documents(conn: sqlite3.Connection) -> int:
    return conn.execute(
        "DELETE FROM documents WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.sha256 = documents.sha256)"
    ).rowcount


def record_erasure(conn: sqlite3.Connection, *, at: str, actor: str, kind: str, details: dict) -> int:
    return inserted_id(
        conn.execute(
            "INSERT INTO erasures (at, actor, kind, details) VALUES (?, ?, ?, ?)",
            (at, actor, kind, json.dumps(details, sort_keys=True)),
        )
    )


def erasures(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute("SELECT * FROM erasures ORDER BY id")
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


# --- retention (purge) ----------------------------------------------------------


def purge_candidates(conn: sqlite3.Connection, closed_before: str) -> list[int]:
    """Cases whose whole family (parent, children, transitively) was closed before the date.

    A family is purged together or not at all: deleting a child under a parent
    that stays would leave the parent's kyc block pointing at nothing, and
    deleting a parent would orphan its children.
    """
    closed = {
        r[0]
        for r in conn.execute(
            "SELECT id FROM cases WHERE final = 1 AND coalesce(decided_at, updated_at) < ?", (closed_before,)
        )
    }
    relatives = _family_links(conn)
    chosen: set[int] = set()
    seen: set[int] = set()
    for start in closed:
        if start in seen:
            continue
        family, todo = {start}, [start]
        while todo:
            for other in relatives.get(todo.pop(), ()):
                if other not in family:
                    family.add(other)
                    todo.append(other)
        seen |= family
        if family <= closed:
            chosen |= family
    return sorted(chosen)


def _family_links(conn: sqlite3.Connection) -> dict[int, set[int]]:
    """Case -> the cases it is tied to: its parent, its children, and the KYC cases its blocks point at."""
    links: dict[int, set[int]] = {}
    pairs = conn.execute(
        "SELECT id, parent_id FROM cases WHERE parent_id IS NOT NULL "
        "UNION SELECT case_id, child_case_id FROM blocks WHERE child_case_id IS NOT NULL"
    )
    for a, b in pairs:
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    return links


def delete_cases(conn: sqlite3.Connection, case_ids: Iterable[int]) -> dict[str, int]:
    """Delete cases and everything they hold, history included (retention).

    History is append-only for every other statement: the guard triggers are
    lifted inside this transaction only and put back before it commits.
    """
    ids = sorted(case_ids, reverse=True)  # children (newer) before parents
    if dialect(conn) == "postgresql":
        # The guard trigger lets this transaction delete (store/pg_schema.py); only a role
        # with DELETE on events (a lead's) gets that far.
        conn.execute("SET LOCAL casectl.purging = 'on'")
        triggers = []
    else:
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events' "
            "AND name LIKE 'events_no_%'"
        ).fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    counts = {"cases": 0, "events": 0}
    # Tables that point at a case, found from the schema so later tables are covered.
    known = {"cases", "blocks", "activities", "events", "event_texts", "notes", "attachments", "outbox", "case_tags"}
    others = [(t, column) for t, column in _references_to_cases(conn) if t not in known]
    try:
        for case_id in ids:
            for table in ("case_tags", "notes", "attachments", "outbox"):
                conn.execute(f"DELETE FROM {table} WHERE case_id = ?", (case_id,))
            for table, column in others:
                conn.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?', (case_id,))
            conn.execute("UPDATE blocks SET child_case_id = NULL WHERE child_case_id = ?", (case_id,))
            conn.execute("DELETE FROM blocks WHERE case_id = ?", (case_id,))
            conn.execute("DELETE FROM activities WHERE case_id = ?", (case_id,))
            conn.execute(
                "DELETE FROM event_texts WHERE event_id IN (SELECT id FROM events WHERE case_id = ?)", (case_id,)
            )
            counts["events"] += conn.execute("DELETE FROM events WHERE case_id = ?", (case_id,)).rowcount
            counts["cases"] += conn.execute("DELETE FROM cases WHERE id = ?", (case_id,)).rowcount
    finally:
        for _, sql in triggers:
            conn.execute(sql)
        if dialect(conn) == "postgresql":
            with contextlib.suppress(sqlite3.Error):  # an aborted transaction ends with it anyway
                conn.execute("SET LOCAL casectl.purging = 'off'")
    counts["subjects"] = conn.execute(
        "DELETE FROM subjects WHERE NOT EXISTS (SELECT 1 FROM cases c WHERE c.subject_id = subjects.id)"
    ).rowcount
    counts["documents"] = delete_orphan_documents(conn)
    return counts


def _references_to_cases(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(table, column) of every foreign key that points at cases."""
    if dialect(conn) == "postgresql":
        sql = (
            "SELECT cl.relname, a.attname FROM pg_constraint k JOIN pg_class cl ON cl.oid = k.conrelid "
            "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
            "WHERE k.contype = 'f' AND k.confrelid = 'cases'::regclass"
        )
        return [(r[0], r[1]) for r in conn.execute(sql)]
    return [
        (t, fk["from"])
        for t in _tables(conn)
        for fk in conn.execute(f'PRAGMA foreign_key_list("{t}")')
        if fk["table"] == "cases"
    ]


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'")
    ]


def guard_triggers(conn: sqlite3.Connection) -> set[str]:
    from .integrity import event_triggers

    return event_triggers(conn)
