"""The outbox, webhook subscriptions (hooks), settings and the digest's queries: all their SQL.

An outbox row is a message waiting to leave: 'pending' until a `deliver` run
claims it ('sending', with a lease in claimed_until/claimed_by), then
'delivered', back to 'pending' with a later next_attempt_at, or 'failed'
after the last attempt. A claim whose lease ran out (the deliverer was
killed) is claimable again, so nothing is ever lost; it may be sent twice,
which is why every message carries an idempotency key, given when it is
queued: `msg_<instance>_<event>_<random>`, unique across databases (the
instance id is this database's, random, kept in settings) and across time
(ids freed by a purge may come back; the random part does not).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable
from typing import Any

from .db import inserted_id
from .dialect import dialect

COLUMNS = (
    "id",
    "case_id",
    "event_id",
    "kind",
    "target",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "updated_at",
    "delivered_at",
    "claimed_until",
    "claimed_by",
)
STATUSES = ("pending", "sending", "delivered", "failed")


def enqueue(
    conn: sqlite3.Connection,
    *,
    case_id: int | None,
    event_id: int | None,
    kind: str,
    target: str,
    payload: dict[str, Any],
    at: str,
) -> int:
    """Queue one message inside the caller's transaction; due at once. Returns the row id."""
    event = f"_E-{event_id}" if event_id is not None else ""
    payload = {**payload, "message_id": f"msg_{instance_id(conn)}{event}_{secrets.token_hex(4)}"}
    cur = conn.execute(
        "INSERT INTO outbox (case_id, event_id, kind, target, payload, status, attempts, next_attempt_at, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        (case_id, event_id, kind, target, json.dumps(payload, ensure_ascii=False, sort_keys=True), at, at, at),
    )
    return inserted_id(cur)


# --- what this connection queued -------------------------------------------------
# A command delivers the messages it queued (or queued again), never another's: the
# connection notes them in a table of its own (TEMP: invisible to other connections,
# gone when it closes, rolled back with the transaction that queued them).


def track_queued(conn: sqlite3.Connection) -> None:
    """From now on, note every message this connection queues or queues again."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS outbox_queued_here (id INTEGER PRIMARY KEY)")
    if dialect(conn) == "postgresql":
        return  # the outbox's own trigger fills the session's table (store/pg_schema.py)
    conn.execute(
        "CREATE TEMP TRIGGER IF NOT EXISTS outbox_queued_here_insert AFTER INSERT ON main.outbox "
        "BEGIN INSERT OR IGNORE INTO outbox_queued_here (id) VALUES (NEW.id); END"
    )
    conn.execute(
        "CREATE TEMP TRIGGER IF NOT EXISTS outbox_queued_here_requeue AFTER UPDATE OF status ON main.outbox "
        "WHEN OLD.status = 'failed' AND NEW.status = 'pending' "
        "BEGIN INSERT OR IGNORE INTO outbox_queued_here (id) VALUES (NEW.id); END"
    )


def queued_here(conn: sqlite3.Connection) -> list[int]:
    """The messages this connection queued since track_queued (none when it was never called)."""
    if (
        dialect(conn) == "postgresql"
        and conn.execute("SELECT to_regclass('pg_temp.outbox_queued_here')").fetchone()[0] is None
    ):
        return []
    try:
        return [r[0] for r in conn.execute("SELECT id FROM temp.outbox_queued_here ORDER BY id")]
    except sqlite3.OperationalError:  # not tracked on this connection
        return []


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    try:
        d["payload"] = json.loads(d["payload"]) if d.get("payload") else {}
    except json.JSONDecodeError:
        d["payload"] = {}
    return d


# --- delivering ---------------------------------------------------------------

_DUE = "(status = 'pending' AND next_attempt_at <= :now) OR (status = 'sending' AND claimed_until <= :now)"


def _kinds_sql(kinds: Iterable[str] | None) -> tuple[str, list[str]]:
    if kinds is None:
        return "", []
    kinds = list(kinds)
    return f" AND kind IN ({', '.join('?' for _ in kinds)})", kinds


def anything_due(conn: sqlite3.Connection, now: str, kinds: Iterable[str] | None = None) -> bool:
    """One indexed look: is any message (of these kinds) due, or abandoned by a killed deliverer?"""
    only, params = _kinds_sql(kinds)
    row = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?{only}) "
        f"OR EXISTS (SELECT 1 FROM outbox WHERE status = 'sending' AND claimed_until <= ?{only})",
        (now, *params, now, *params),
    ).fetchone()
    return bool(row[0])


def claim(
    conn: sqlite3.Connection,
    *,
    worker: str,
    now: str,
    until: str,
    limit: int,
    ids: Iterable[int] | None = None,
    kinds: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Mark up to `limit` due rows as 'sending' by `worker` until `until`; returns them.

    Must run under the write lock (BEGIN IMMEDIATE) so that two deliverers
    can never claim the same row.
    """
    sql = f"SELECT id FROM outbox WHERE ({_DUE})"
    params: dict[str, Any] = {"now": now, "limit": limit}
    if ids is not None:
        wanted = list(ids)
        if not wanted:
            return []
        sql += f" AND id IN ({', '.join(str(int(i)) for i in wanted)})"
    if kinds is not None:
        sql += " AND kind IN (" + ", ".join(f":kind{i}" for i, _ in enumerate(kinds)) + ")"
        params.update({f"kind{i}": k for i, k in enumerate(kinds)})
    sql += " ORDER BY next_attempt_at, id LIMIT :limit"
    if dialect(conn) == "postgresql":
        sql += " FOR UPDATE SKIP LOCKED"  # another deliverer's claim in flight is passed over, not waited for
    picked = [r[0] for r in conn.execute(sql, params)]
    if not picked:
        return []
    marks = ", ".join("?" for _ in picked)
    conn.execute(
        f"UPDATE outbox SET status = 'sending', claimed_by = ?, claimed_until = ?, attempts = attempts + 1, "
        f"updated_at = ? WHERE id IN ({marks})",
        (worker, until, now, *picked),
    )
    return [_row(r) for r in conn.execute(f"SELECT * FROM outbox WHERE id IN ({marks}) ORDER BY id", picked)]


def mark_delivered(conn: sqlite3.Connection, row_id: int, *, worker: str, at: str) -> bool:
    """Record a successful send, if the claim is still ours (else someone re-claimed it)."""
    cur = conn.execute(
        "UPDATE outbox SET status = 'delivered', delivered_at = ?, updated_at = ?, last_error = NULL, "
        "claimed_until = NULL, claimed_by = NULL WHERE id = ? AND claimed_by = ? AND status = 'sending'",
        (at, at, row_id, worker),
    )
    return cur.rowcount == 1


def mark_attempt_failed(
    conn: sqlite3.Connection, row_id: int, *, worker: str, at: str, error: str, next_attempt_at: str | None
) -> bool:
    """Back to 'pending' at `next_attempt_at`, or 'failed' when it is None."""
    status = "pending" if next_attempt_at else "failed"
    cur = conn.execute(
        "UPDATE outbox SET status = ?, next_attempt_at = COALESCE(?, next_attempt_at), last_error = ?, "
        "updated_at = ?, claimed_until = NULL, claimed_by = NULL WHERE id = ? AND claimed_by = ? "
        "AND status = 'sending'",
        (status, next_attempt_at, error[:1000], at, row_id, worker),
    )
    return cur.rowcount == 1


# --- looking ------------------------------------------------------------------


def get(conn: sqlite3.Connection, row_id: int) -> dict[str, Any] | None:
    r = conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone()
    return _row(r) if r else None


def list_(
    conn: sqlite3.Connection, *, statuses: tuple[str, ...] = (), case_id: int | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    clauses: list[str] = []
    params: list[str | int] = []
    if statuses:
        clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
        params += list(statuses)
    if case_id is not None:
        clauses.append("case_id = ?")
        params.append(case_id)
    sql = "SELECT * FROM outbox" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_row(r) for r in conn.execute(sql, params)]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute("SELECT status, count(*) FROM outbox GROUP BY status")}


def requeue(conn: sqlite3.Connection, row_ids: list[int], *, at: str) -> int:
    """'failed' rows back to 'pending', due now, with a fresh count of attempts."""
    if not row_ids:
        return 0
    marks = ", ".join("?" for _ in row_ids)
    cur = conn.execute(
        f"UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? "
        f"WHERE status = 'failed' AND id IN ({marks})",
        (at, at, *row_ids),
    )
    return cur.rowcount


def failed_ids(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM outbox WHERE status = 'failed' ORDER BY id")]


def cases_with_errors(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per case: its failed deliveries, the newest error, and deliveries still being retried."""
    sql = (
        "SELECT o.case_id, c.status AS case_status, c.workflow, s.name AS subject_name, "
        "count(*) FILTER (WHERE o.status = 'failed') AS failed, "
        "count(*) FILTER (WHERE o.status IN ('pending', 'sending') AND o.last_error IS NOT NULL) AS retrying, "
        "(SELECT o2.last_error FROM outbox o2 WHERE o2.case_id IS o.case_id AND o2.last_error IS NOT NULL "
        " AND o2.status != 'delivered' ORDER BY o2.updated_at DESC, o2.id DESC LIMIT 1) AS last_error, "
        "(SELECT o2.kind || ' ' || coalesce(o2.target, '') FROM outbox o2 WHERE o2.case_id IS o.case_id "
        " AND o2.last_error IS NOT NULL AND o2.status != 'delivered' "
        " ORDER BY o2.updated_at DESC, o2.id DESC LIMIT 1) AS last_target, "
        "max(o.updated_at) AS last_attempt_at "
        "FROM outbox o LEFT JOIN cases c ON c.id = o.case_id LEFT JOIN subjects s ON s.id = c.subject_id "
        "WHERE o.status = 'failed' OR (o.status IN ('pending', 'sending') AND o.last_error IS NOT NULL) "
        "GROUP BY o.case_id, c.status, c.workflow, s.name ORDER BY max(o.updated_at) DESC"
    )
    return [dict(r) for r in conn.execute(sql)]


# --- hooks (webhook subscriptions) ----------------------------------------------


def add_hook(
    conn: sqlite3.Connection,
    *,
    url: str,
    events: list[str],
    workflow: str | None,
    secret_env: str | None,
    at: str,
    actor: str,
) -> int:
    cur = conn.execute(
        "INSERT INTO hooks (url, event, workflow, secret_env, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
        (url, ",".join(events), workflow, secret_env, at, actor),
    )
    return inserted_id(cur)


def _hook(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["events"] = [e for e in (d.pop("event") or "").split(",") if e]
    return d


def hooks(conn: sqlite3.Connection, *, workflow: str | None = None) -> list[dict[str, Any]]:
    """All subscriptions, or those that apply to cases of `workflow` (theirs and the unscoped ones)."""
    if workflow is None:
        rows = conn.execute("SELECT * FROM hooks ORDER BY id")
    else:
        rows = conn.execute("SELECT * FROM hooks WHERE workflow IS NULL OR workflow = ? ORDER BY id", (workflow,))
    return [_hook(r) for r in rows]


def remove_hook(conn: sqlite3.Connection, hook_id: int) -> bool:
    return conn.execute("DELETE FROM hooks WHERE id = ?", (hook_id,)).rowcount == 1


# --- settings -------------------------------------------------------------------

INSTANCE = "instance_id"


def instance_id(conn: sqlite3.Connection) -> str:
    """This database's random id (made the first time it is asked for, inside the caller's write)."""
    found = get_setting(conn, INSTANCE)
    if found:
        return found
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (INSTANCE, secrets.token_hex(8)),
    )
    made = get_setting(conn, INSTANCE)
    assert made is not None  # inserted just now, or by another writer before us
    return made


def get_setting(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_setting(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM settings WHERE key = ?", (key,))
    else:
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


# --- the digest's questions -----------------------------------------------------


def last_event_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


def first_event_id_at(conn: sqlite3.Connection, at: str) -> int:
    """The id of the last event before `at` (the watermark equivalent of a date)."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM events WHERE at < ?", (at,)).fetchone()[0]


def decided_case_ids(conn: sqlite3.Connection, after_event: int, upto_event: int) -> list[int]:
    """Cases given a decision or moved into a final status by an event in (after, upto]."""
    sql = (
        "SELECT DISTINCT e.case_id FROM events e JOIN cases c ON c.id = e.case_id "
        "WHERE e.id > ? AND e.id <= ? AND e.kind != 'created' AND ("
        # the case's decision, not an activity's, a block's or a child's (those carry one too)
        " (json_extract(e.data, '$.decision') IS NOT NULL AND e.kind NOT LIKE 'activity.%'"
        "  AND e.kind NOT LIKE 'block.%' AND e.kind NOT LIKE 'child.%')"
        " OR (c.final = 1 AND e.to_status = c.status AND e.from_status IS NOT e.to_status)) "
        "ORDER BY e.case_id"
    )
    return [r[0] for r in conn.execute(sql, (after_event, upto_event))]


def created_case_ids(conn: sqlite3.Connection, after_event: int, upto_event: int) -> list[int]:
    sql = "SELECT case_id FROM events WHERE id > ? AND id <= ? AND kind = 'created' ORDER BY case_id"
    return [r[0] for r in conn.execute(sql, (after_event, upto_event))]
