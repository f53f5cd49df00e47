"""Running routines (rules/routines.py): `casectl routines run`, from cron.

For every workflow version with routines, the cases that have been in a
routine's status long enough are read from the status_since index; each is
then handled in its own short write transaction, which looks again (the case
may have moved, another run may have fired it) and fires the routine once:
an event `routine` on the case, then each step through the same service
functions an agent's command uses (the kernel for events, the outbox for
emails and webhooks). Any refusal undoes that case's steps alone, is
recorded (routine_runs, with the attempts) and reported; the next run tries
again. Once fired, a routine never fires again until the case leaves the
status and enters it anew.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import ids, rules
from ..errors import CasectlError, InvalidInput, NotFound
from ..rules import Workflow
from ..rules.routines import BUSINESS, Routine, step_kind
from ..store import events as event_store
from ..store import rollback, savepoint, write
from ..store import routines as store
from ..store import workflows as wf_store
from ..timeutil import iso, parse_time
from . import effects, lifecycle, queue, sla
from . import workflows as workflow_service

ROUTINE_EVENT = "case.routine."  # the event type of a routine's emails and webhooks: case.routine.NAME


@dataclass
class Outcome:
    case: str
    routine: str
    workflow: str
    outcome: str  # fired | would_fire | failed
    steps: list[str] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0
    event: str | None = None


def actor_of(r: Routine) -> str:
    """Who a routine's changes are recorded as."""
    return f"routine:{r.name}"


def business_seconds(r: Routine, wf: Workflow) -> int:
    """How much of the routine's time must pass: in business time a day is one working day
    (the SLA's working hours) and a week that many working days."""
    n, unit = r.amount
    if r.time != BUSINESS or unit not in ("d", "w"):
        return r.calendar_seconds
    cal = sla.Calendar.of(wf.sla or {})
    if cal.start is None or cal.end is None or cal.end <= cal.start:
        day = 86400
    else:
        day = (cal.end.hour * 3600 + cal.end.minute * 60) - (cal.start.hour * 3600 + cal.start.minute * 60)
    return int(n * day * (len(cal.days) if unit == "w" else 1))


def due_at(r: Routine, wf: Workflow, entered: datetime) -> datetime:
    """When a case that entered the routine's status at `entered` is due for it."""
    seconds = business_seconds(r, wf)
    if r.time == BUSINESS and wf.sla:
        return sla.add(wf.sla, entered, seconds)
    return entered + timedelta(seconds=seconds)


def with_routines(conn: sqlite3.Connection, workflow: str | None = None) -> list[Workflow]:
    """Every stored workflow version that declares routines (a case follows the version it was created with)."""
    found: list[Workflow] = []
    names = [workflow] if workflow else [row["name"] for row in wf_store.latest_all(conn)]
    if workflow:
        workflow_service.get(conn, workflow)  # an unknown name is exit 3
    for name in names:
        for row in wf_store.versions(conn, name):
            wf = rules.workflow_from_dict(row["definition"])
            if wf.routines:
                found.append(wf)
    return found


def run(
    conn: sqlite3.Connection,
    *,
    now: datetime,
    dry_run: bool = False,
    workflow: str | None = None,
    only: str | None = None,
) -> list[Outcome]:
    """Fire every routine that is due (`only`: just the routine of that name); with `dry_run`
    each is tried and undone, so the report says what would happen, failures included."""
    outcomes: list[Outcome] = []
    wfs = with_routines(conn, workflow)
    if only and not any(r.name == only for wf in wfs for r in wf.routines):
        raise NotFound(f"no routine '{only}'" + (f" in workflow {workflow}" if workflow else ""))
    for wf in wfs:
        for r in wf.routines:
            if only and r.name != only:
                continue
            # Business time runs no faster than the calendar: nothing entered later can be due.
            cutoff = iso(now - timedelta(seconds=business_seconds(r, wf)))
            for case_id in store.candidates(conn, wf.name, wf.version, r.statuses, cutoff):
                outcome = _one(conn, wf, r, case_id, now=now, dry_run=dry_run)
                if outcome is not None:
                    outcomes.append(outcome)
    return outcomes


def _one(
    conn: sqlite3.Connection, wf: Workflow, r: Routine, case_id: int, *, now: datetime, dry_run: bool
) -> Outcome | None:
    """Fire `r` on one case if it is still due, in a transaction of its own."""
    cid = ids.fmt("case", case_id)
    with write(conn):
        case = lifecycle.get(conn, case_id)
        if case["status"] not in r.statuses or (case["workflow"], case["workflow_version"]) != (wf.name, wf.version):
            return None  # it moved since the candidates were read
        entered = store.entry_event(conn, case_id, case["status"])
        done = store.run_of(conn, case_id, r.name, entered)
        if done and done["state"] == store.FIRED:
            return None
        since = case.get("status_since") or case["created_at"]
        if due_at(r, wf, parse_time(since)) > now:
            return None
        if r.when is not None:
            from ..rules import conditions

            if not conditions.holds(r.when, lifecycle.case_document(conn, case)):
                return None  # not now; asked again on the next run while the case waits
        outcome = Outcome(cid, r.name, wf.name, "would_fire" if dry_run else "fired")
        try:
            with savepoint(conn, "routine"):
                event_id = _fire(conn, wf, r, case, entered, outcome, now=now)
        except CasectlError as e:
            attempts = store.record(conn, case_id, r.name, entered, state=store.FAILED, at=iso(now), error=e.message)
            outcome.outcome, outcome.error, outcome.attempts = "failed", e.message, attempts
        else:
            outcome.attempts = store.record(
                conn, case_id, r.name, entered, state=store.FIRED, at=iso(now), event_id=event_id
            )
            outcome.event = ids.fmt("event", event_id)
        if dry_run:
            rollback(conn)
        return outcome


def _fire(
    conn: sqlite3.Connection,
    wf: Workflow,
    r: Routine,
    case: Mapping[str, Any],
    entered: int,
    outcome: Outcome,
    *,
    now: datetime,
) -> int:
    """The routine's event, then its steps in order; raises CasectlError when a step is refused."""
    actor = actor_of(r)
    at = iso(now)
    declared = [describe(step) for step in r.steps]
    event_id = event_store.append(
        conn,
        case["id"],
        at=at,
        actor=actor,
        kind="routine",
        data={
            "routine": r.name,
            "entered": ids.fmt("event", entered) if entered else None,
            "after": r.after,
            "steps": declared,
            "summary": f"routine {r.name} ({case['status']} for {r.after}): {', '.join(declared)}",
        },
    )
    event = {"id": event_id, "time": at, "action": None, "from_status": None, "to_status": case["status"]}
    for n, step in enumerate(r.steps, 1):
        try:
            outcome.steps.append(_step(conn, wf, r, case["id"], step, event, actor=actor, now=now))
        except CasectlError as e:
            e.message = f"step {n} ({declared[n - 1]}): {e.message}"
            raise
    lifecycle.advance(conn, case["id"], actor=actor, now=now)
    return event_id


def describe(step: Mapping[str, Any]) -> str:
    """A step in a few words: `email`, `event remind`, `tag +stale`, `priority high`."""
    kind = step_kind(step) or "?"
    value = step.get(kind)
    if kind in ("email", "webhook"):
        target = value.get("to") if kind == "email" and isinstance(value, Mapping) else None
        return f"{kind} to {', '.join(target)}" if target else kind
    if kind == "activity" and isinstance(value, Mapping):
        return f"activity {value.get('type')}"
    if kind == "assign" and isinstance(value, Mapping):
        return "assign " + ", ".join(f"{k} {v or '-'}" for k, v in value.items())
    if kind == "tag" and isinstance(value, list):
        return "tag " + " ".join(value)
    if kind == "note":
        return "note"
    return f"{kind} {value}"


def _step(
    conn: sqlite3.Connection,
    wf: Workflow,
    r: Routine,
    case_id: int,
    step: Mapping[str, Any],
    event: dict[str, Any],
    *,
    actor: str,
    now: datetime,
) -> str:
    """Do one step on the case as it is now; returns what was done, in a few words."""
    kind = step_kind(step)
    value = step[kind] if kind else None
    case = lifecycle.get(conn, case_id)
    if kind in ("email", "webhook"):
        outbox_id = effects.queue(conn, {**dict(value or {}), "type": kind}, case_id, event, ROUTINE_EVENT + r.name)
        return f"{kind} queued ({ids.fmt('outbox', outbox_id)})" if outbox_id else f"{kind} not queued"
    if kind == "event":
        spec = wf.action(str(value))
        trigger = rules.AGENT if spec is None or spec.trigger == rules.AGENT else rules.SYSTEM
        t = lifecycle.perform(
            conn,
            case,
            str(value),
            actor=actor,
            now=now,
            trigger=trigger,
            reason=step.get("reason"),
            decision=step.get("decision"),
            data={"routine": r.name},
        )
        return f"{t.action}: {t.from_status} -> {t.to_status}"
    if kind == "assign":
        people = {"assignee": value} if isinstance(value, str) else dict(value or {})
        result = queue.assign_in(
            conn,
            case,
            assignee=people.get("assignee"),
            team=people.get("team"),
            clear_assignee="assignee" in people and people["assignee"] is None,
            clear_team="team" in people and people["team"] is None,
            actor=actor,
            now=now,
            action="routine",
        )
        return "assigned: " + (", ".join(f"{k} {v[1] or '-'}" for k, v in result["changes"].items()) or "no change")
    if kind == "tag":
        add, remove = queue.parse_tag_changes([value] if isinstance(value, str) else list(value or ()))
        result = queue.tag_in(conn, case, add, remove, actor=actor, now=now)
        return "tags: " + (
            " ".join([f"+{t}" for t in result["added"]] + [f"-{t}" for t in result["removed"]]) or "no change"
        )
    if kind == "priority":
        result = queue.priority_in(conn, case, str(value), actor=actor, now=now)
        return f"priority {result['priority']}" if result["event"] else f"priority already {result['priority']}"
    if kind == "activity":
        from . import content

        spec_ = dict(value or {})
        content.check_open(conn, case, f"add activity {spec_.get('type')}")
        row = content.add_activity_in(
            conn,
            case,
            str(spec_.get("type")),
            label=spec_.get("label"),
            assignee=spec_.get("assignee"),
            team=spec_.get("team"),
            actor=actor,
            now=now,
        )
        return f"activity {row.get('id')} {row.get('type')}"
    if kind == "note":
        result = queue.note_in(conn, case, str(value), private=False, actor=actor, now=now)
        return f"note {result['note']}"
    raise InvalidInput(f"routine {r.name}: a step with none of the known keys; fix the workflow")


def routine_rows(conn: sqlite3.Connection, workflow: str | None = None) -> list[dict[str, Any]]:
    """The routines of every workflow's newest version, as `routines list` shows them."""
    rows = []
    for wf, _ in workflow_service.all_latest(conn):
        if workflow and wf.name != workflow:
            continue
        for r in wf.routines:
            rows.append(
                {
                    "workflow": wf.name,
                    "version": wf.version,
                    "routine": r.name,
                    "in_status": ", ".join(r.statuses),
                    "after": r.after,
                    "time": r.time,
                    "when": r.when,
                    "steps": [describe(s) for s in r.steps],
                }
            )
    if workflow and not rows:
        workflow_service.get(conn, workflow)  # an unknown workflow is exit 3; a known one may have none
    return rows


def show_parts(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None, now: datetime) -> dict:
    """Part of `show`: the routines waiting on this case's current status, when each is due, and how it went."""
    rows = []
    entered: int | None = None
    for r in wf.routines:
        if case["status"] not in r.statuses:
            continue
        if entered is None:
            entered = store.entry_event(conn, case["id"], case["status"])
        run = store.run_of(conn, case["id"], r.name, entered)
        due = due_at(r, wf, parse_time(case.get("status_since") or case["created_at"]))
        state = run["state"] if run else ("due" if due <= now else "waiting")
        rows.append(
            {
                "routine": r.name,
                "after": r.after,
                "time": r.time,
                "due_at": iso(due),
                "state": state,
                "attempts": run["attempts"] if run else 0,
                "last_error": run["last_error"] if run and run["state"] == store.FAILED else None,
                "event": ids.fmt("event", run["event_id"]) if run and run["event_id"] else None,
            }
        )
    return {"routines": rows} if rows else {}
