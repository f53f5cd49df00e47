"""The append-only event log: each event keyed-hash-chained to its case's previous one.

An event's personal free text (its reason, note texts, summaries, subject lines,
results: `PRIVATE_KEYS`) is kept beside it in `event_texts`, salted, and the
event carries only the text's hash. Erasure blanks the text and its salt; the
chain still verifies, and readers see `[erased]` where the text was.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from .. import ids
from ..errors import InvalidInput
from . import bulk, chain

ERASED = "[erased]"

# In event_mac's order, then the hash (the reason sits in event_texts).
_INSERT_COLUMNS = (
    "id",
    "prev_hash",
    "case_id",
    "at",
    "actor",
    "login",
    "kind",
    "action",
    "from_status",
    "to_status",
    "data",
    "text_hash",
    "hash",
)

# Data keys whose values are free text that may name the subject; any string with an @ too.
PRIVATE_KEYS = frozenset(
    {
        "summary",
        "text",
        "subject",
        "reason",
        "changes",
        "result",
        "results",
        "title",
        "body",
        "comment",
        "message",
        "filename",
        "name",
        "email",
        "phone",
        "recipient",
        "with_whom",
        "location",
        "details",
        "reference",
    }
)

# The canonical JSON of the hashed payload, and of an event's data (keys sorted).
_PAYLOAD_JSON = bulk.json_encoder(separators=(",", ":"), ensure_ascii=False)
_DATA_JSON = bulk.json_encoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)

# An event to append: (case_id, at, actor, kind, action, from_status, to_status, reason, data, prev_hash),
# `data` a mapping (None: empty), `prev_hash` "" for a new case's first event, None for the next of a case.
NewEvent = tuple[
    int, str, str, str, str | None, str | None, str | None, str | None, Mapping[str, Any] | None, str | None
]

_FORMAT = 2  # the first field of every hashed payload


def event_mac(
    key: chain.Key,
    event_id: int,
    prev_hash: str,
    case_id: int,
    at: str,
    actor: str,
    login: str | None,
    kind: str,
    action: str | None,
    from_status: str | None,
    to_status: str | None,
    data: str,
    text_hash: str | None,
) -> str:
    """HMAC-SHA256, under the chain key, of the event's fields and its predecessor's hash.

    The payload is the compact JSON array `json.dumps([2, id, prev_hash, case_id, at, actor, login,
    kind, action, from_status, to_status, data, text_hash], separators=(",", ":"), ensure_ascii=False)`
    (`data` the public data's JSON text, `text_hash` the hash of the private text or null);
    strings, None and ints are written straight with the encoder's own string function.
    """
    fields: tuple[Any, ...] = (
        _FORMAT,
        event_id,
        prev_hash,
        case_id,
        at,
        actor,
        login,
        kind,
        action,
        from_status,
        to_status,
        data,
        text_hash,
    )
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
    return key.mac(payload)


def text_digest(salt: str, body: str) -> str:
    return hashlib.sha256((salt + body).encode("utf-8")).hexdigest()


def seal_text(private: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(salt, body, text hash, JSON list of the fields) of an event's private text."""
    salt = os.urandom(16).hex()
    body = _DATA_JSON(private)
    fields = (["reason"] if "reason" in private else []) + sorted(private.get("data", ()))
    return salt, body, text_digest(salt, body), _DATA_JSON(fields)


def split_private(reason: str | None, data: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public data, private text): the reason and the free-text values go private."""
    public: dict[str, Any] = {}
    private: dict[str, Any] = {}
    if reason is not None:
        private["reason"] = reason
    if data:
        hidden: dict[str, Any] = {}
        for k, v in data.items():
            if k in PRIVATE_KEYS or (v.__class__ is str and "@" in v):
                hidden[k] = v
            else:
                public[k] = v
        if hidden:
            private["data"] = hidden
    return public, private


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
) -> int:
    """Append one event (`append_many` of one); returns its id."""
    return append_many(conn, [(case_id, at, actor, kind, action, from_status, to_status, reason, data, None)])[0]


class _Head:
    __slots__ = ("events", "last_event", "last_at", "head")

    def __init__(self, events: int = 0, last_event: int = 0, last_at: str = "", head: str = ""):
        self.events, self.last_event, self.last_at, self.head = events, last_event, last_at, head


def _heads(conn: sqlite3.Connection, case_ids: set[int]) -> dict[int, _Head]:
    found: dict[int, _Head] = {}
    listed = sorted(case_ids)
    for i in range(0, len(listed), 500):
        chunk = listed[i : i + 500]
        sql = (
            "SELECT case_id, events, last_event, last_at, head FROM chain_heads "
            f"WHERE case_id IN ({','.join('?' * len(chunk))}) AND purged_at IS NULL"
        )
        for case_id, n, last_event, last_at, head in conn.execute(sql, chunk):
            found[case_id] = _Head(n, last_event, last_at, head)
    return found


_HEAD_UPSERT = " ON CONFLICT (case_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in chain.HEAD_COLUMNS[1:]
)


def append_many(conn: sqlite3.Connection, events: Sequence[NewEvent]) -> list[int]:
    """Append events in order, each MACed and chained to its case's previous one
    (also to one earlier in `events`); returns their ids.

    Ids continue from the seal (never reused). An event earlier than its case's
    previous one is refused (exit 6): the history is in time order.
    """
    if not events:
        return []
    key = chain.key(conn)
    # Who ran it: on PostgreSQL the role the server authenticated, else the OS account.
    login = getattr(conn, "login", None) or chain.os_login()
    last_case, last_event = chain.seal(conn)
    sealed_cases = last_case  # a case above it has never had a chain head
    top = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    next_id = max(last_event, top) + 1
    heads = _heads(conn, {e[0] for e in events if e[9] != ""})
    rows: list[tuple] = []
    texts: list[tuple] = []
    encode = _DATA_JSON
    for case_id, at, actor, kind, action, from_status, to_status, reason, data, prev in events:
        head = heads.get(case_id)
        if head is None or prev == "":
            head = heads[case_id] = _Head()
            last_case = max(last_case, case_id)
        elif at < head.last_at:
            raise InvalidInput(
                f"{ids.fmt('case', case_id)}: this change would be dated {at}, earlier than the case's last event "
                f"({ids.fmt('event', head.last_event)} at {head.last_at}); history is kept in time order"
            )
        public, private = split_private(reason, data)
        data_json = encode(public) if public else "{}"
        text_hash = None
        if private:
            salt, body, text_hash, fields = seal_text(private)
            texts.append((next_id, fields, salt, body))
        values = (
            next_id, head.head, case_id, at, actor, login, kind, action, from_status, to_status, data_json, text_hash
        )  # fmt: skip
        h = event_mac(key, *values)
        rows.append((*values, h))
        head.events += 1
        head.last_event, head.last_at, head.head = next_id, at, h
        next_id += 1
    event_ids = bulk.insert_rows(conn, "events", _INSERT_COLUMNS, rows)
    if texts:
        bulk.insert_rows(conn, "event_texts", ("event_id", "fields", "salt", "body"), texts)
    new_heads: list[tuple] = []
    head_rows: list[tuple] = []
    for case_id in sorted({r[2] for r in rows}):  # (id, prev_hash, case_id, ...)
        t = heads[case_id]
        mac = chain.head_mac(key, case_id, t.events, t.last_event, t.last_at, t.head, None)
        (new_heads if case_id > sealed_cases else head_rows).append(
            (case_id, t.events, t.last_event, t.last_at, t.head, None, mac)
        )
    bulk.insert_rows(conn, "chain_heads", chain.HEAD_COLUMNS, new_heads)  # new cases: plain rows
    bulk.insert_rows(conn, "chain_heads", chain.HEAD_COLUMNS, head_rows, conflict=_HEAD_UPSERT)
    chain.write_seal(conn, key, last_case, next_id - 1)
    return event_ids


# --- reading ---------------------------------------------------------------------

_SELECT = (
    "SELECT e.*, t.fields AS text_fields, t.body AS text_body, t.erased_at AS text_erased_at "
    "FROM events e LEFT JOIN event_texts t ON t.event_id = e.id"
)


def for_case(conn: sqlite3.Connection, case_id: int, *, limit: int | None = None, newest: bool = False) -> list[dict]:
    order = "DESC" if newest else "ASC"
    sql = f"{_SELECT} WHERE e.case_id = ? ORDER BY e.id {order}"
    params: list[Any] = [case_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = [row(r) for r in conn.execute(sql, params)]
    return list(reversed(rows)) if newest else rows


def row(r: sqlite3.Row) -> dict[str, Any]:
    """An event as readers see it: its private text back in place, or `[erased]` where it was."""
    d = dict(r)
    fields, body, erased_at = d.pop("text_fields", None), d.pop("text_body", None), d.pop("text_erased_at", None)
    data = json.loads(d["data"]) if d["data"] else {}
    if fields is not None:
        if body is not None:
            private = json.loads(body)
            d["reason"] = private.get("reason")
            data.update(private.get("data", {}))
        else:
            for name in json.loads(fields):
                if name == "reason":
                    d["reason"] = ERASED
                else:
                    data[name] = ERASED
            d["erased_at"] = erased_at
    d["data"] = data
    return d


def reasons(conn: sqlite3.Connection, case_id: int, kind: str, block: str) -> list[str | None]:
    """The reasons of a case's events of one kind about one block, newest first."""
    sql = f"{_SELECT} WHERE e.case_id = ? AND e.kind = ? AND json_extract(e.data, '$.block') = ? ORDER BY e.id DESC"
    return [row(r).get("reason") for r in conn.execute(sql, (case_id, kind, block))]


def erase_texts(conn: sqlite3.Connection, case_ids: Iterable[int], *, at: str) -> int:
    """Blank the private text (and its salt) of every event of these cases; the hashes stay."""
    n = 0
    for case_id in case_ids:
        n += conn.execute(
            "UPDATE event_texts SET body = NULL, salt = NULL, erased_at = ? "
            "WHERE body IS NOT NULL AND event_id IN (SELECT id FROM events WHERE case_id = ?)",
            (at, case_id),
        ).rowcount
    return n


# --- verifying ---------------------------------------------------------------------


def chain_rows(conn: sqlite3.Connection) -> Iterator[sqlite3.Row]:
    """Every event with its text's salt and body, in chain order (case, id)."""
    return conn.execute(
        "SELECT e.id, e.case_id, e.at, e.actor, e.login, e.kind, e.action, e.from_status, e.to_status, e.reason, "
        "e.data, e.text_hash, e.prev_hash, e.hash, t.event_id AS text_id, t.salt, t.body "
        "FROM events e LEFT JOIN event_texts t ON t.event_id = e.id ORDER BY e.case_id, e.id"
    )


class CaseChain:
    """What verifying one case's events found: its count, last event and head hash."""

    __slots__ = ("case_id", "events", "last_event", "last_at", "head", "hashes", "event_ids")

    def __init__(self, case_id: int):
        self.case_id, self.events, self.last_event, self.last_at, self.head = case_id, 0, 0, "", ""
        self.hashes: list[str] = []
        self.event_ids: list[int] = []


def verify(key: chain.Key, rows: Iterable[sqlite3.Row], problems: list[tuple[int, int, str]]) -> Iterator[CaseChain]:
    """Walk the events in chain order; yield each case's chain when it ends, and add
    (case_id, event_id, problem) to `problems` for every event that does not hold."""
    current: CaseChain | None = None
    for r in rows:
        case_id = r["case_id"]
        if current is None or current.case_id != case_id:
            if current is not None:
                yield current
            current = CaseChain(case_id)
        event_id = r["id"]
        if r["prev_hash"] != current.head:
            problems.append((case_id, event_id, "its prev_hash does not match the previous event"))
        expected = event_mac(
            key,
            event_id,
            r["prev_hash"] or "",
            case_id,
            r["at"],
            r["actor"],
            r["login"],
            r["kind"],
            r["action"],
            r["from_status"],
            r["to_status"],
            r["data"],
            r["text_hash"],
        )
        if expected != r["hash"]:
            problems.append((case_id, event_id, "its content does not match its hash (edited after it was written)"))
        elif r["reason"] is not None:
            problems.append((case_id, event_id, "it has a reason outside its hashed text (added after it was written)"))
        if r["text_hash"] is not None:
            if r["text_id"] is None:
                problems.append((case_id, event_id, "its text is missing (deleted after it was written)"))
            elif r["body"] is not None and text_digest(r["salt"] or "", r["body"]) != r["text_hash"]:
                problems.append((case_id, event_id, "its text does not match its hash (edited after it was written)"))
        elif r["text_id"] is not None:
            problems.append((case_id, event_id, "it has a text it was not written with"))
        if r["at"] < current.last_at:
            problems.append((case_id, event_id, f"it is dated {r['at']}, before the event it follows"))
        current.events += 1
        current.last_event, current.last_at, current.head = event_id, r["at"], r["hash"]
        current.hashes.append(r["hash"])
        current.event_ids.append(event_id)
    if current is not None:
        yield current
