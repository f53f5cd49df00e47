"""`casectl db check`: is the file sound and does every case agree with its history?"""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import ids
from ..store import events as event_store
from ..store import read


def check(conn: sqlite3.Connection, *, limit: int = 100) -> dict[str, Any]:
    problems: list[str] = []
    with read(conn):
        for (msg,) in conn.execute("PRAGMA integrity_check"):
            if msg != "ok":
                problems.append(f"integrity: {msg}")
        for row in conn.execute("PRAGMA foreign_key_check"):
            problems.append(f"foreign key: {row[0]} row {row[1]} points to a missing {row[2]}")
        rows = conn.execute(
            "SELECT id, case_id, at, actor, kind, action, from_status, to_status, reason, data, prev_hash, hash "
            "FROM events ORDER BY case_id, id"
        )
        broken_cases: set[int] = set()
        for case_id, event_id, problem in event_store.iter_chain_breaks(rows):
            if case_id not in broken_cases:
                broken_cases.add(case_id)
                problems.append(f"history of {ids.fmt('case', case_id)} breaks at {ids.fmt('event', event_id)}: {problem}")
        # A case's status is where its last status-bearing event left it.
        mismatch = conn.execute(
            "SELECT c.id, c.status, e.to_status FROM cases c JOIN events e ON e.id = ("
            "  SELECT max(id) FROM events WHERE case_id = c.id AND to_status IS NOT NULL) "
            "WHERE e.to_status != c.status"
        )
        for case_id, status, expected in mismatch:
            problems.append(f"{ids.fmt('case', case_id)} is {status} but its history ends in {expected}")
        for (case_id,) in conn.execute("SELECT id FROM cases c WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.case_id = c.id)"):
            problems.append(f"{ids.fmt('case', case_id)} has no history")
        cases = conn.execute("SELECT count(*) FROM cases").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return {"ok": not problems, "problems": problems[:limit], "problem_count": len(problems), "cases": cases,
            "events": events}
