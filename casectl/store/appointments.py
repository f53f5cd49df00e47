"""Appointments logged on a case (seed 004): rows in, rows out."""

from __future__ import annotations

import sqlite3
from typing import Any

from .db import inserted_id


def add(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    starts_at: str,
    minutes: int,
    title: str,
    with_whom: str | None,
    created_at: str,
    created_by: str,
) -> int:
    cur = conn.execute(
        "INSERT INTO appointments (case_id, starts_at, minutes, title, with_whom, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (case_id, starts_at, minutes, title, with_whom, created_at, created_by),
    )
    return inserted_id(cur)


_SELECT = (
    "SELECT a.*, c.ref AS case_ref, s.name AS subject_name FROM appointments a "
    "JOIN cases c ON c.id = a.case_id LEFT JOIN subjects s ON s.id = c.subject_id"
)


def get(conn: sqlite3.Connection, appointment_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"{_SELECT} WHERE a.id = ?", (appointment_id,)).fetchone()
    return dict(row) if row else None


def cancel(conn: sqlite3.Connection, appointment_id: int, *, at: str, reason: str | None) -> None:
    conn.execute(
        "UPDATE appointments SET cancelled_at = ?, cancel_reason = ? WHERE id = ?", (at, reason, appointment_id)
    )


def select(
    conn: sqlite3.Connection,
    *,
    case_id: int | None = None,
    since: str | None = None,
    until: str | None = None,
    include_cancelled: bool = False,
    limit: int | None = None,
) -> list[dict]:
    clauses: list[str] = []
    params: list[str | int] = []
    if case_id is not None:
        clauses.append("a.case_id = ?")
        params.append(case_id)
    if since is not None:
        clauses.append("a.starts_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("a.starts_at <= ?")
        params.append(until)
    if not include_cancelled:
        clauses.append("a.cancelled_at IS NULL")
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    sql = f"{_SELECT}{where} ORDER BY a.starts_at, a.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [dict(r) for r in conn.execute(sql, params)]
