"""The queries behind `casectl db check`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from .dialect import dialect


def integrity_messages(conn: sqlite3.Connection) -> list[str]:
    if dialect(conn) == "postgresql":
        return []  # the server checks its own pages (data checksums); there is no file to read here
    return [msg for (msg,) in conn.execute("PRAGMA integrity_check") if msg != "ok"]


def foreign_key_problems(conn: sqlite3.Connection) -> list[tuple]:
    if dialect(conn) == "postgresql":
        return []  # PostgreSQL enforces every foreign key on every statement
    return [tuple(r) for r in conn.execute("PRAGMA foreign_key_check")]


def events_in_chain_order(conn: sqlite3.Connection) -> Iterator[sqlite3.Row]:
    return conn.execute(
        "SELECT id, case_id, at, actor, kind, action, from_status, to_status, reason, data, prev_hash, hash "
        "FROM events ORDER BY case_id, id"
    )


def status_mismatches(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
    """Cases whose status differs from where their last status-bearing event left them."""
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT c.id, c.status, e.to_status FROM cases c JOIN events e ON e.id = ("
            "  SELECT max(id) FROM events WHERE case_id = c.id AND to_status IS NOT NULL) "
            "WHERE e.to_status != c.status"
        )
    ]


def cases_without_history(conn: sqlite3.Connection) -> list[int]:
    return [
        r[0]
        for r in conn.execute("SELECT id FROM cases c WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.case_id = c.id)")
    ]


def kyc_blocks_without_child(conn: sqlite3.Connection) -> list[tuple[int, int, str, int | None]]:
    """KYC blocks whose child case is not there: (block id, case id, block name, the child id it names)."""
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT b.id, b.case_id, b.name, b.child_case_id FROM blocks b WHERE b.kind = 'kyc' AND ("
            "  b.child_case_id IS NULL OR NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = b.child_case_id)) "
            "ORDER BY b.id"
        )
    ]


def totals(conn: sqlite3.Connection) -> tuple[int, int]:
    return (
        conn.execute("SELECT count(*) FROM cases").fetchone()[0],
        conn.execute("SELECT count(*) FROM events").fetchone()[0],
    )


def event_triggers(conn: sqlite3.Connection) -> set[str]:
    if dialect(conn) == "postgresql":
        sql = (
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal AND tgenabled != 'D'"
        )
        return {r[0] for r in conn.execute(sql)}
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'")}


def status_events(conn: sqlite3.Connection) -> Iterator[tuple]:
    """Every status-bearing event with its case's workflow, in history order."""
    return conn.execute(
        "SELECT e.case_id, c.workflow, c.workflow_version, e.kind, e.action, e.from_status, e.to_status, e.id "
        "FROM events e JOIN cases c ON c.id = e.case_id WHERE e.to_status IS NOT NULL ORDER BY e.case_id, e.id"
    )
