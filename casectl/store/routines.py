"""Routines' bookkeeping: which cases are due, and which routine fired on which entry into a status."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

FIRED, FAILED = "fired", "failed"


def candidates(
    conn: sqlite3.Connection, workflow: str, version: int, statuses: Sequence[str], entered_before: str
) -> list[int]:
    """Cases of this workflow version in one of `statuses` since no later than `entered_before`, oldest first."""
    marks = ", ".join("?" for _ in statuses)
    sql = (
        f"SELECT id FROM cases WHERE status IN ({marks}) AND status_since <= ? "
        "AND workflow = ? AND workflow_version = ? ORDER BY status_since, id"
    )
    return [r[0] for r in conn.execute(sql, (*statuses, entered_before, workflow, version))]


def entry_event(conn: sqlite3.Connection, case_id: int, status: str) -> int:
    """The event by which the case last entered `status` (0 when none is recorded)."""
    row = conn.execute(
        "SELECT max(id) FROM events WHERE case_id = ? AND to_status = ? "
        "AND (from_status IS NULL OR from_status != to_status)",
        (case_id, status),
    ).fetchone()
    return row[0] or 0


def run_of(conn: sqlite3.Connection, case_id: int, routine: str, entered: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT state, attempts, last_error, event_id, at FROM routine_runs "
        "WHERE case_id = ? AND routine = ? AND entered = ?",
        (case_id, routine, entered),
    ).fetchone()
    return dict(zip(("state", "attempts", "last_error", "event_id", "at"), row)) if row else None


def record(
    conn: sqlite3.Connection,
    case_id: int,
    routine: str,
    entered: int,
    *,
    state: str,
    at: str,
    event_id: int | None = None,
    error: str | None = None,
) -> int:
    """Note a try: fired (with its event) or failed (with the error); returns the attempts so far."""
    conn.execute(
        "INSERT INTO routine_runs (case_id, routine, entered, state, attempts, last_error, event_id, at) "
        "VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (case_id, routine, entered) DO UPDATE SET "
        "state = excluded.state, attempts = routine_runs.attempts + 1, last_error = excluded.last_error, "
        "event_id = excluded.event_id, at = excluded.at",
        (case_id, routine, entered, state, error, event_id, at),
    )
    row = conn.execute(
        "SELECT attempts FROM routine_runs WHERE case_id = ? AND routine = ? AND entered = ?",
        (case_id, routine, entered),
    ).fetchone()
    return int(row[0])


def runs(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    """A case's routine runs, newest first (for `show`)."""
    cols = ("routine", "entered", "state", "attempts", "last_error", "event_id", "at")
    sql = f"SELECT {', '.join(cols)} FROM routine_runs WHERE case_id = ? ORDER BY at DESC, routine"
    return [dict(zip(cols, r)) for r in conn.execute(sql, (case_id,))]
