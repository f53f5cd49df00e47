"""`casectl db check`: is the file sound and does every case agree with its history?"""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import ids
from ..store import events as event_store
from ..store import integrity as checks
from ..store import read
from . import workflows as workflow_service

GUARD_TRIGGERS = {"events_no_update", "events_no_delete"}


def check(conn: sqlite3.Connection, *, limit: int = 100) -> dict[str, Any]:
    problems: list[str] = []
    with read(conn):
        problems += [f"integrity: {msg}" for msg in checks.integrity_messages(conn)]
        problems += [
            f"foreign key: {table} row {rowid} points to a missing {parent}"
            for table, rowid, parent, *_ in checks.foreign_key_problems(conn)
        ]
        broken: set[int] = set()
        for case_id, event_id, problem in event_store.iter_chain_breaks(checks.events_in_chain_order(conn)):
            if case_id not in broken:  # the first broken link of each case
                broken.add(case_id)
                problems.append(
                    f"history of {ids.fmt('case', case_id)} breaks at {ids.fmt('event', event_id)}: {problem}"
                )
        problems += [
            f"{ids.fmt('case', cid)} is {status} but its history ends in {expected}"
            for cid, status, expected in checks.status_mismatches(conn)
        ]
        problems += [f"{ids.fmt('case', cid)} has no history" for cid in checks.cases_without_history(conn)]
        problems += [
            f"kyc block {name} ({ids.fmt('block', bid)}) of {ids.fmt('case', cid)} points to "
            + (f"{ids.fmt('case', child)}, which is missing" if child is not None else "no KYC case")
            for bid, cid, name, child in checks.kyc_blocks_without_child(conn)
        ]
        problems += replay(conn)
        missing = GUARD_TRIGGERS - checks.event_triggers(conn)
        problems += [f"history is not protected: trigger {name} is missing" for name in sorted(missing)]
        cases, events = checks.totals(conn)
    return {
        "ok": not problems,
        "problems": problems[:limit],
        "problem_count": len(problems),
        "cases": cases,
        "events": events,
    }


def replay(conn: sqlite3.Connection) -> list[str]:
    """Replay every case's history through its workflow's rules.

    Each status-changing event must start where the previous one ended and be a
    move the workflow allows (an action's sources and targets, or a direct
    status change the workflow permits); the last one must be the stored status.
    """
    problems: list[str] = []
    workflows: dict[tuple[str, int], Any] = {}
    current: dict[int, str] = {}
    bad: set[int] = set()
    for case_id, wf_name, wf_version, kind, action, frm, to, event_id in checks.status_events(conn):
        if case_id in bad:
            continue
        key = (wf_name, wf_version)
        if key not in workflows:
            workflows[key] = workflow_service.get(conn, wf_name, wf_version)
        wf = workflows[key]
        where = f"{ids.fmt('case', case_id)} at {ids.fmt('event', event_id)}"
        if kind == "created":
            problem = None if wf.status(to) else f"{where}: created in unknown status {to}"
        elif current.get(case_id) != frm:
            problem = f"{where}: starts from {frm} but the case was {current.get(case_id)}"
        elif kind == "status":
            ok = frm in wf.set_status.sources and to in wf.set_status.targets
            problem = None if ok else f"{where}: {wf.name} does not allow setting {frm} -> {to}"
        else:
            spec = wf.action(action) if action else None
            ok = spec is not None and frm in spec.sources and to in spec.targets
            problem = None if ok else f"{where}: {action} cannot move {frm} -> {to} in {wf.name} v{wf.version}"
        if problem:
            problems.append(problem)
            bad.add(case_id)
        current[case_id] = to
    return problems
