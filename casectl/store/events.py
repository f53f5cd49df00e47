"""The append-only event log, each event hash-chained to its case's previous one."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

EVENT_COLUMNS = (
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


def event_hash(
    prev_hash: str,
    case_id: int,
    at: str,
    actor: str,
    kind: str,
    action: str | None,
    from_status: str | None,
    to_status: str | None,
    reason: str | None,
    data: str,
) -> str:
    """sha256 over the event's fields and its predecessor's hash (canonical JSON)."""
    payload = json.dumps(
        [prev_hash, case_id, at, actor, kind, action, from_status, to_status, reason, data],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def last_hash(conn: sqlite3.Connection, case_id: int) -> str:
    row = conn.execute("SELECT hash FROM events WHERE case_id = ? ORDER BY id DESC LIMIT 1", (case_id,)).fetchone()
    return row[0] if row else ""


def append(
    conn: sqlite3.Connection,
    case_id: int,
    *,
    at: str,
    actor: str,
    kind: str,
    action: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    prev_hash: str | None = None,
) -> int:
    """Append one event; returns its id. Pass prev_hash when the caller already knows it."""
    data_json = json.dumps(data or {}, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    prev = last_hash(conn, case_id) if prev_hash is None else prev_hash
    h = event_hash(prev, case_id, at, actor, kind, action, from_status, to_status, reason, data_json)
    cur = conn.execute(
        "INSERT INTO events (case_id, at, actor, kind, action, from_status, to_status, reason, data, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (case_id, at, actor, kind, action, from_status, to_status, reason, data_json, prev, h),
    )
    return cur.lastrowid


def for_case(conn: sqlite3.Connection, case_id: int, *, limit: int | None = None, newest: bool = False) -> list[dict]:
    order = "DESC" if newest else "ASC"
    sql = f"SELECT * FROM events WHERE case_id = ? ORDER BY id {order}"
    params: list[Any] = [case_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = [_row(r) for r in conn.execute(sql, params)]
    return list(reversed(rows)) if newest else rows


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["data"] = json.loads(d["data"]) if d["data"] else {}
    return d


def iter_chain_breaks(rows: Iterable[sqlite3.Row]) -> Iterable[tuple[int, int, str]]:
    """Yield (case_id, event_id, problem) for every event whose chain does not hold.

    `rows` must be ordered by case_id, id.
    """
    prev_case, prev = None, ""
    for r in rows:
        if r["case_id"] != prev_case:
            prev_case, prev = r["case_id"], ""
        if r["prev_hash"] != prev:
            yield r["case_id"], r["id"], "its prev_hash does not match the previous event"
        expected = event_hash(
            r["prev_hash"] or "",
            r["case_id"],
            r["at"],
            r["actor"],
            r["kind"],
            r["action"],
            r["from_status"],
            r["to_status"],
            r["reason"],
            r["data"],
        )
        if expected != r["hash"]:
            yield r["case_id"], r["id"], "its content does not match its hash (edited after it was written)"
        prev = r["hash"]
