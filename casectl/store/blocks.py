"""Blocks, in SQL: a case's units of data (seed 000) and the child cases behind KYC blocks."""

from __future__ import annotations

import sqlite3
from typing import Any

from .columns import dumps as _dumps
from .columns import loads as _loads
from .db import inserted_id

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
    return inserted_id(cur)


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
    from .events import reasons  # the reason sits beside its event, and may have been erased

    found = reasons(conn, case_id, kind, block)
    return found[0] if found else None


def block_states(conn: sqlite3.Connection, case_id: int) -> list[sqlite3.Row]:
    """Each block's name, kind, status and (for KYC blocks) whether its child case is final."""
    return conn.execute(
        "SELECT b.name, b.kind, b.status, b.child_case_id, ch.final AS child_final FROM blocks b "
        "LEFT JOIN cases ch ON ch.id = b.child_case_id WHERE b.case_id = ? ORDER BY b.id",
        (case_id,),
    ).fetchall()


def blocks_in_status(conn: sqlite3.Connection, case_id: int, status: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, name, status FROM blocks WHERE case_id = ? AND status = ? ORDER BY id", (case_id, status)
    ).fetchall()


def move_blocks(conn: sqlite3.Connection, case_id: int, frm: str, to: str, *, at: str) -> None:
    conn.execute(
        "UPDATE blocks SET status = ?, updated_at = ? WHERE case_id = ? AND status = ?", (to, at, case_id, frm)
    )
