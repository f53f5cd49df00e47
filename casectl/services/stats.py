"""`casectl stats` (seed 004's dashboards): open and closed counts, opened vs
closed in a period, median time to decision, SLA breaches, workload per
assignee, and the change against the previous period of the same length.

Every count goes through services.listing (the same CaseFilter -> SQL as
`list`), so `stats` and `list ... | wc -l` always agree.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..errors import UsageError
from ..filters import CaseFilter
from ..store import queue as queue_store
from ..store import read
from ..timeutil import iso
from . import listing

BY = ("status", "workflow", "assignee", "team")
DEFAULT_PERIOD = timedelta(days=30)


def _period_filters(f: CaseFilter, since: str, until: str) -> dict[str, CaseFilter]:
    return {
        "opened": replace(f, created_since=since, created_until=until),
        "closed": replace(f, closed_only=True, decided_since=since, decided_until=until),
    }


def figures(conn: sqlite3.Connection, f: CaseFilter, since: datetime, until: datetime) -> dict[str, Any]:
    """The period's numbers for the cases matching `f`."""
    s, u = iso(since), iso(until)
    period = _period_filters(f, s, u)
    # Closed and breached in one pass; `list --closed --sla-breached` uses the same condition.
    closed, breached, median = queue_store.decided_figures(conn, period["closed"])
    return {
        "since": s,
        "until": u,
        "opened": listing.count(conn, period["opened"]),
        "closed": closed,
        "median_decision_hours": None if median is None else round(median / 3600, 2),
        "sla_breached": breached,
        "sla_breach_rate": round(breached / closed, 4) if closed else None,
    }


def stats(
    conn: sqlite3.Connection,
    f: CaseFilter,
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
    compare: bool = False,
) -> dict[str, Any]:
    if by is not None and by not in BY:
        raise UsageError(f"--by: '{by}' is not one of {', '.join(BY)}")
    until = until or now
    since = since or until - DEFAULT_PERIOD
    if since >= until:
        raise UsageError(f"--since ({iso(since)}) must be before --until ({iso(until)})")
    with read(conn):
        open_f = replace(f, open_only=True)
        out: dict[str, Any] = {
            "open": listing.count(conn, open_f),
            "closed_total": listing.count(conn, replace(f, closed_only=True)),
            "overdue": listing.count(conn, replace(f, overdue_at=iso(now))),
            "period": figures(conn, f, since, until),
            "workload": [{"assignee": a, "open": n} for a, n in listing.count_by(conn, open_f, "assignee")],
        }
        if compare:
            length = until - since
            prev = figures(conn, f, since - length, since)
            cur = out["period"]
            out["previous"] = prev
            out["change"] = {
                k: (None if cur[k] is None or prev[k] is None else round(cur[k] - prev[k], 4))
                for k in ("opened", "closed", "median_decision_hours", "sla_breached", "sla_breach_rate")
            }
        if by:
            out["by"] = by
            out["groups"] = _groups(conn, f, by, iso(since), iso(until), iso(now))
    return out


def _groups(conn: sqlite3.Connection, f: CaseFilter, by: str, since: str, until: str, now: str) -> list[dict]:
    period = _period_filters(f, since, until)
    columns = {
        "open": replace(f, open_only=True),
        "closed_total": replace(f, closed_only=True),
        "overdue": replace(f, overdue_at=now),
        "opened": period["opened"],
        "closed": period["closed"],
        "sla_breached": replace(period["closed"], sla_breached=True),
    }
    rows: dict[Any, dict[str, Any]] = {}
    for name, cf in columns.items():
        for key, n in listing.count_by(conn, cf, by):
            rows.setdefault(key, {by: key, **{c: 0 for c in columns}})[name] = n
    return sorted(rows.values(), key=lambda r: (r[by] is None, str(r[by])))
