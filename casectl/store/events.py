"""The append-only event log, each event hash-chained to its case's previous one."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from . import bulk

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
_INSERT_COLUMNS = EVENT_COLUMNS[1:]  # SQLite numbers them

# The canonical JSON of the hashed payload, and of an event's data (keys sorted).
_PAYLOAD_JSON = bulk.json_encoder(separators=(",", ":"), ensure_ascii=False)
_DATA_JSON = bulk.json_encoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)

# An event to append: (case_id, at, actor, kind, action, from_status, to_status, reason, data, prev_hash),
# `data` a mapping (None: empty), `prev_hash` None to chain it to the case's last event.
NewEvent = tuple[
    int, str, str, str, str | None, str | None, str | None, str | None, Mapping[str, Any] | None, str | None
]


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
    """sha256 over the event's fields and its predecessor's hash (canonical JSON).

    The payload is the compact JSON array `json.dumps([prev_hash, case_id, at, actor, kind,
    action, from_status, to_status, reason, data], separators=(",", ":"), ensure_ascii=False)`;
    strings, None and ints are written straight with the encoder's own string function (the
    same bytes, without building an encoder per call), anything else by the encoder itself.
    """
    fields: tuple[Any, ...] = (prev_hash, case_id, at, actor, kind, action, from_status, to_status, reason, data)
    parts: list[str] = []
    for v in fields:
        cls = v.__class__
        if cls is str:
            parts.append(encode_basestring(v))
        elif v is None:
            parts.append("null")
        elif cls is int:
            parts.append(int.__repr__(v))
        else:
            payload = _PAYLOAD_JSON(list(fields))
            break
    else:
        payload = "[" + ",".join(parts) + "]"
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
    data: Mapping[str, Any] | None = None,
    prev_hash: str | None = None,
) -> int:
    """Append one event (`append_many` of one); returns its id. Pass prev_hash when the caller already knows it."""
    return append_many(conn, [(case_id, at, actor, kind, action, from_status, to_status, reason, data, prev_hash)])[0]


def append_many(conn: sqlite3.Connection, events: Sequence[NewEvent]) -> list[int]:
    """Append events in order, each hashed and chained to its case's previous one
    (also to one earlier in `events`); returns their ids."""
    rows = []
    chained: dict[int, str] = {}
    encode = _DATA_JSON
    for case_id, at, actor, kind, action, from_status, to_status, reason, data, prev in events:
        data_json = encode(data) if data else "{}"
        if prev is None:
            prev = chained[case_id] if case_id in chained else last_hash(conn, case_id)
        h = event_hash(prev, case_id, at, actor, kind, action, from_status, to_status, reason, data_json)
        chained[case_id] = h
        rows.append((case_id, at, actor, kind, action, from_status, to_status, reason, data_json, prev, h))
    return bulk.insert_rows(conn, "events", _INSERT_COLUMNS, rows)


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
