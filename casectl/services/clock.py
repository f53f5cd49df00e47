"""The SLA clock, a follower of the lifecycle kernel.

A new case's clock starts at creation (paused when it is born waiting); it
pauses when the case enters a waiting status and resumes when it leaves one.
It returns no follow-ups.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..rules import Workflow
from ..store import queue as queue_store
from ..timeutil import iso, parse_time
from . import sla
from .records import Created, FollowUp, Transition


def creation_clock(wf: Workflow, status: str, now: datetime) -> tuple[str | None, str | None, int | None] | None:
    """The SLA clock (due_at, sla_paused_at, sla_remaining) of a case created at `now` in `status`;
    None when it has none (no SLA, or a final status). A case born waiting starts paused."""
    budget = sla.budget_seconds(wf.sla)
    if budget is None or wf.sla is None or wf.is_final(status):
        return None
    target = wf.status(status)
    if target is not None and target.waiting:
        return None, iso(now), budget
    return iso(sla.add(wf.sla, now, budget)), None, None


def on_created(conn: sqlite3.Connection, record: Created) -> list[FollowUp]:
    """Start the SLA clock (due_at) of a new case; a case born waiting starts paused."""
    clock = creation_clock(record.workflow, record.status, record.at)
    if clock is not None:
        queue_store.set_sla_clock(conn, record.case_id, due_at=clock[0], paused_at=clock[1], remaining=clock[2])
    return []


def on_transition(conn: sqlite3.Connection, record: Transition) -> list[FollowUp]:
    """Pause or resume the SLA clock when a case enters or leaves a waiting status.

    A final status stops nothing: due_at stays, so a late decision shows as a
    breach. A case already overdue keeps running overdue while it waits.
    """
    wf, now = record.workflow, record.at
    if wf.sla is None or sla.budget_seconds(wf.sla) is None or wf.is_final(record.to_status):
        return []
    clock = queue_store.sla_clock(conn, record.case_id)
    target = wf.status(record.to_status)
    waiting = bool(target and target.waiting)
    if waiting and not clock.get("sla_paused_at") and clock.get("due_at"):
        left = sla.between(wf.sla, now, parse_time(clock["due_at"]))
        if left > 0:
            queue_store.set_sla_clock(conn, record.case_id, due_at=None, paused_at=iso(now), remaining=left)
    elif not waiting and clock.get("sla_paused_at"):
        due = sla.add(wf.sla, now, int(clock.get("sla_remaining") or 0))
        queue_store.set_sla_clock(conn, record.case_id, due_at=iso(due), paused_at=None, remaining=None)
    return []
