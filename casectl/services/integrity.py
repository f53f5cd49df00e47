"""`casectl db check`: is the file sound and does every case agree with its history?"""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import ids
from ..store import events as event_store
from ..store import integrity as checks
from ..store import read


def check(conn: sqlite3.Connection, *, limit: int = 100) -> dict[str, Any]:
    problems: list[str] = []
    with read(conn):
        problems += [f"integrity: {msg}" for msg in checks.integrity_messages(conn)]
        problems += [f"foreign key: {table} row {rowid} points to a missing {parent}"
                     for table, rowid, parent, *_ in checks.foreign_key_problems(conn)]
        broken: set[int] = set()
        for case_id, event_id, problem in event_store.iter_chain_breaks(checks.events_in_chain_order(conn)):
            if case_id not in broken:  # the first broken link of each case
                broken.add(case_id)
                problems.append(f"history of {ids.fmt('case', case_id)} breaks at {ids.fmt('event', event_id)}: "
                                f"{problem}")
        problems += [f"{ids.fmt('case', cid)} is {status} but its history ends in {expected}"
                     for cid, status, expected in checks.status_mismatches(conn)]
        problems += [f"{ids.fmt('case', cid)} has no history" for cid in checks.cases_without_history(conn)]
        cases, events = checks.totals(conn)
    return {"ok": not problems, "problems": problems[:limit], "problem_count": len(problems), "cases": cases,
            "events": events}
