"""Notes, the SLA clock, the take queue and the figures behind `stats`: the SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ..filters import CaseFilter
from . import cases as case_store
from .db import inserted_id
from .dialect import dialect

# --- notes ----------------------------------------------------------------------


def next_note_id(conn: sqlite3.Connection) -> int:
    """The id the next note will get (callers hold the write lock)."""
    return conn.execute("SELECT coalesce(max(id), 0) + 1 FROM notes").fetchone()[0]


def add_note(
    conn: sqlite3.Connection, case_id: int, *, at: str, actor: str, text: str, private: bool, event_id: int
) -> int:
    cur = conn.execute(
        "INSERT INTO notes (case_id, at, actor, text, private, event_id) VALUES (?, ?, ?, ?, ?, ?)",
        (case_id, at, actor, text, int(private), event_id),
    )
    return inserted_id(cur)


def notes(conn: sqlite3.Connection, case_ids: list[int], *, include_private: bool) -> list[dict[str, Any]]:
    """Notes of these cases, oldest first; private ones only when asked for."""
    if not case_ids:
        return []
    marks = ", ".join("?" for _ in case_ids)
    sql = f"SELECT * FROM notes WHERE case_id IN ({marks})" + ("" if include_private else " AND private = 0")
    rows = conn.execute(sql + " ORDER BY case_id, id", list(case_ids))
    return [{**dict(r), "private": bool(r["private"])} for r in rows]


# --- SLA clock -------------------------------------------------------------------


def sla_clock(conn: sqlite3.Connection, case_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT due_at, sla_paused_at, sla_remaining, final, decided_at FROM cases WHERE id = ?", (case_id,)
    ).fetchone()
    return dict(row) if row else {}


def set_sla_clock(
    conn: sqlite3.Connection, case_id: int, *, due_at: str | None, paused_at: str | None, remaining: int | None
) -> None:
    """Derived from the status change that the same transaction just versioned,
    so the case's version is not bumped a second time."""
    conn.execute(
        "UPDATE cases SET due_at = ?, sla_paused_at = ?, sla_remaining = ? WHERE id = ?",
        (due_at, paused_at, remaining, case_id),
    )


# --- the take queue ----------------------------------------------------------------


# The keys `take` may order its queue by: each one's SQL terms (ascending) and the same terms'
# values for a row, which are where the next batch starts. `priority` ranks by a list of levels.
QUEUE_KEYS = ("priority", "due", "age")


def _queue_terms(key: str, levels: Sequence[str]) -> tuple[list[str], list[Any]]:
    if key == "priority":  # the levels' order (most urgent first), an unknown level after them
        whens = " ".join(f"WHEN ? THEN {i}" for i in range(len(levels)))
        return [f"CASE c.priority {whens} ELSE {len(levels)} END"], list(levels)
    if key == "due":  # soonest first, the cases without a due time after those with one
        return ["CASE WHEN c.due_at IS NULL THEN 1 ELSE 0 END", "coalesce(c.due_at, '')"], []
    if key == "age":
        return ["c.created_at"], []
    raise ValueError(key)


def _queue_values(key: str, levels: Sequence[str], row: dict[str, Any]) -> list[Any]:
    if key == "priority":
        return [levels.index(row["priority"]) if row["priority"] in levels else len(levels)]
    if key == "due":
        return [1 if row["due_at"] is None else 0, row["due_at"] or ""]
    return [row["created_at"]]


def queue(
    conn: sqlite3.Connection,
    f: CaseFilter,
    *,
    order: Sequence[str] = ("age",),
    levels: Sequence[str] = (),
    batch: int = 200,
) -> Iterator[dict[str, Any]]:
    """Unassigned open cases matching `f` in `order` (keys of QUEUE_KEYS; ties go to the
    lowest id), fetched a batch at a time, each batch starting after the last row's keys."""
    f = CaseFilter(**{**f.__dict__, "unassigned": True, "open_only": True, "closed_only": False})
    where, params = case_store.where_sql(f)
    terms: list[str] = []
    term_params: list[Any] = []
    for key in order:
        key_terms, values = _queue_terms(key, levels)
        terms += key_terms
        term_params += values
    terms.append("c.id")
    row_value = f"({', '.join(terms)})"
    order_by = f" ORDER BY {', '.join(terms)}"
    after: list[Any] | None = None
    while True:
        sql, args = f"{case_store.SELECT}{where}", list(params)
        if after is not None:
            sql += f"{' AND' if where else ' WHERE'} {row_value} > ({', '.join('?' for _ in after)})"
            args += term_params + after
        rows = list(case_store.dicts(conn, f"{sql}{order_by} LIMIT ?", [*args, *term_params, batch]))
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]
        after = [v for key in order for v in _queue_values(key, levels, last)] + [last["id"]]


# --- stats -----------------------------------------------------------------------


def decided_figures(conn: sqlite3.Connection, f: CaseFilter) -> tuple[int, int, float | None]:
    """Over the decided cases matching `f`: how many, how many breached their SLA
    (`case_store.BREACHED`, the `--sla-breached` condition), and the median
    seconds from creation to decision. One counting pass off the filter's index
    and, when there are any, one ordered read for the median."""
    where, params = case_store.where_sql(f, ordered=False)
    if not (f.decided_since or f.decided_until):  # a decided range already excludes the undecided
        where = (where + " AND " if where else " WHERE ") + "c.decided_at IS NOT NULL"
    base = f"{case_store._from(where)}{where}"
    n, breached = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {case_store.BREACHED}) {base}", params
    ).fetchone()
    if not n:
        return 0, 0, None
    if dialect(conn) == "postgresql":
        expr = "extract(epoch FROM c.decided_at::timestamptz - c.created_at::timestamptz)::float8"
    else:
        expr = "(julianday(c.decided_at) - julianday(c.created_at)) * 86400.0"
    rows = conn.execute(
        f"SELECT {expr} AS s {base} ORDER BY s LIMIT ? OFFSET ?", [*params, 2 - n % 2, (n - 1) // 2]
    ).fetchall()
    return n, breached, sum(r[0] for r in rows) / len(rows)
