"""Activities, in SQL: the work a case requires (seed 002), with states, results and decisions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from .columns import dumps as _dumps
from .columns import loads as _loads
from .db import inserted_id

ACTIVITY_FILTERS = ("state", "type", "team", "assignee", "decision", "workflow", "case_status")

_ACTIVITY_SELECT = (
    "SELECT a.*, c.status AS case_status, c.workflow AS workflow, s.name AS subject_name "
    "FROM activities a JOIN cases c ON c.id = a.case_id LEFT JOIN subjects s ON s.id = c.subject_id"
)


def _activity(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["requirement"] = _loads(d["requirement"])
    d["result"] = _loads(d["result"])
    return d


def insert_activity(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    type: str,
    label: str | None,
    state: str,
    assignee: str | None,
    team: str | None,
    requirement: dict[str, Any],
    at: str,
    actor: str,
) -> int:
    cur = conn.execute(
        "INSERT INTO activities (case_id, type, label, state, assignee, team, requirement, result, created_at, "
        "updated_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?)",
        (case_id, type, label, state, assignee, team, _dumps(requirement), at, at, actor),
    )
    return inserted_id(cur)


def activities(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    return [_activity(r) for r in conn.execute(f"{_ACTIVITY_SELECT} WHERE a.case_id = ? ORDER BY a.id", (case_id,))]


def activity(conn: sqlite3.Connection, activity_id: int) -> dict[str, Any] | None:
    r = conn.execute(f"{_ACTIVITY_SELECT} WHERE a.id = ?", (activity_id,)).fetchone()
    return _activity(r) if r else None


def update_activity(conn: sqlite3.Connection, activity_id: int, changes: dict[str, Any], *, at: str) -> None:
    allowed = ("state", "result", "decision", "decided_by", "decided_at", "assignee", "team")
    bad = [c for c in changes if c not in allowed]
    if bad:
        raise ValueError(f"not updatable: {bad}")
    values = {k: (_dumps(v) if k == "result" else v) for k, v in changes.items()}
    sets = "".join(f"{c} = ?, " for c in values)
    conn.execute(f"UPDATE activities SET {sets}updated_at = ? WHERE id = ?", (*values.values(), at, activity_id))


def select_activities(
    conn: sqlite3.Connection, *, filters: dict[str, Any], undecided: bool = False, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Activities across cases (seed 002's activity results page). `filters` values may be lists."""
    columns = {
        "state": "a.state",
        "type": "a.type",
        "team": "a.team",
        "assignee": "a.assignee",
        "decision": "a.decision",
        "workflow": "c.workflow",
        "case_status": "c.status",
    }
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        if value in (None, (), []):
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        clauses.append(f"{columns[key]} IN ({', '.join('?' for _ in values)})")
        params += values
    if undecided:
        clauses.append("a.decision IS NULL AND a.state != 'cancelled'")
    sql = _ACTIVITY_SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY a.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for r in conn.execute(sql, params):
        yield _activity(r)


def activity_states(conn: sqlite3.Connection, case_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, type, state, decision FROM activities WHERE case_id = ? ORDER BY id", (case_id,)
    ).fetchall()
