"""What a case holds, in SQL: blocks, documents (content-addressed), attachments,
activities and the child cases behind KYC blocks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


# --- blocks -------------------------------------------------------------------

_BLOCK_SELECT = (
    "SELECT b.*, ch.status AS child_status, ch.final AS child_final, ch.decision AS child_decision, cs.name AS child_subject_name, "
    "cs.email AS child_subject_email, "
    "(SELECT count(*) FROM attachments a WHERE a.block_id = b.id) AS attachment_count "
    "FROM blocks b LEFT JOIN cases ch ON ch.id = b.child_case_id LEFT JOIN subjects cs ON cs.id = ch.subject_id"
)


def _block(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["data"] = _loads(d["data"])
    d["child_final"] = None if d.get("child_case_id") is None else bool(d["child_final"])
    return d


def insert_block(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    name: str,
    kind: str,
    data: dict[str, Any],
    status: str | None,
    child_case_id: int | None,
    at: str,
) -> int:
    cur = conn.execute(
        "INSERT INTO blocks (case_id, name, kind, status, data, child_case_id, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (case_id, name, kind, status, _dumps(data), child_case_id, at, at),
    )
    return cur.lastrowid


def blocks(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    return [_block(r) for r in conn.execute(f"{_BLOCK_SELECT} WHERE b.case_id = ? ORDER BY b.id", (case_id,))]


def block_by_name(conn: sqlite3.Connection, case_id: int, name: str) -> dict[str, Any] | None:
    r = conn.execute(f"{_BLOCK_SELECT} WHERE b.case_id = ? AND b.name = ?", (case_id, name)).fetchone()
    return _block(r) if r else None


def block_by_id(conn: sqlite3.Connection, case_id: int, block_id: int) -> dict[str, Any] | None:
    r = conn.execute(f"{_BLOCK_SELECT} WHERE b.case_id = ? AND b.id = ?", (case_id, block_id)).fetchone()
    return _block(r) if r else None


def block_for_child(conn: sqlite3.Connection, child_case_id: int) -> dict[str, Any] | None:
    """The KYC block (on the parent) whose current flow is this child case."""
    r = conn.execute(f"{_BLOCK_SELECT} WHERE b.child_case_id = ?", (child_case_id,)).fetchone()
    return _block(r) if r else None


def update_block(conn: sqlite3.Connection, block_id: int, changes: dict[str, Any], *, at: str) -> None:
    allowed = ("status", "data", "child_case_id", "decided_by", "decided_at")
    bad = [c for c in changes if c not in allowed]
    if bad:
        raise ValueError(f"not updatable: {bad}")
    values = {k: (_dumps(v) if k == "data" else v) for k, v in changes.items()}
    sets = "".join(f"{c} = ?, " for c in values)
    conn.execute(f"UPDATE blocks SET {sets}updated_at = ? WHERE id = ?", (*values.values(), at, block_id))


def children(conn: sqlite3.Connection, parent_id: int) -> list[dict[str, Any]]:
    """Child cases of a case, with the block that points at each (if any still does)."""
    sql = (
        "SELECT c.id, c.status, c.final, c.workflow, c.decision, c.created_at, s.name AS subject_name, "
        "s.email AS subject_email, (SELECT b.name FROM blocks b WHERE b.child_case_id = c.id) AS block "
        "FROM cases c LEFT JOIN subjects s ON s.id = c.subject_id WHERE c.parent_id = ? ORDER BY c.id"
    )
    return [dict(r) | {"final": bool(r["final"])} for r in conn.execute(sql, (parent_id,))]


def last_block_reason(conn: sqlite3.Connection, case_id: int, block: str, kind: str) -> str | None:
    """The reason of the newest `kind` event about `block` (e.g. why a re-upload was asked)."""
    r = conn.execute(
        "SELECT reason FROM events WHERE case_id = ? AND kind = ? AND json_extract(data, '$.block') = ? "
        "ORDER BY id DESC LIMIT 1",
        (case_id, kind, block),
    ).fetchone()
    return r[0] if r else None


# --- documents and attachments --------------------------------------------------


def put_document(conn: sqlite3.Connection, *, sha256: str, content: bytes, media_type: str | None, at: str) -> bool:
    """Store the bytes once under their sha256; returns whether they were new."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO documents (sha256, size, media_type, content, created_at) VALUES (?, ?, ?, ?, ?)",
        (sha256, len(content), media_type, content, at),
    )
    return cur.rowcount == 1


def insert_attachment(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    block_id: int,
    sha256: str,
    filename: str,
    media_type: str | None,
    size: int,
    at: str,
    actor: str,
) -> int:
    cur = conn.execute(
        "INSERT INTO attachments (case_id, block_id, sha256, filename, media_type, size, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (case_id, block_id, sha256, filename, media_type, size, at, actor),
    )
    return cur.lastrowid


def attachments(conn: sqlite3.Connection, block_id: int) -> list[dict[str, Any]]:
    """A block's attachments, oldest first (the last one is the current document)."""
    return [dict(r) for r in conn.execute("SELECT * FROM attachments WHERE block_id = ? ORDER BY id", (block_id,))]


def latest_attachment(conn: sqlite3.Connection, block_id: int) -> dict[str, Any] | None:
    r = conn.execute("SELECT * FROM attachments WHERE block_id = ? ORDER BY id DESC LIMIT 1", (block_id,)).fetchone()
    return dict(r) if r else None


def document_content(conn: sqlite3.Connection, sha256: str) -> bytes | None:
    r = conn.execute("SELECT content FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
    return bytes(r[0]) if r else None


def document_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM documents").fetchone()[0]


# --- activities ---------------------------------------------------------------

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
    return cur.lastrowid


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
