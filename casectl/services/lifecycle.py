"""The lifecycle kernel: the one door every change to a case's status passes through.

It loads a case with the workflow version it was created with (parsed once
per process), builds the state the rules look at, asks the rules, writes the
change and its event, and hands one record of what happened (`records.Created`,
`records.Transition`) to its followers: the SLA clock, the outbox effects and
child cases. Followers return follow-ups (fire a system action on a parent or
a child, start a child case, advance a case) that the kernel carries out in
the same transaction, and then it fires the automatic actions whose guards
hold, to a fixed point with a bound. Followers never import this module.

Everything here runs inside the caller's transaction (`store.write`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .. import ids, rules
from ..errors import CasectlError, Conflict, InvalidInput, NotAllowed, NotFound
from ..rules import CaseState, Verdict, Workflow
from ..store import activities as activity_store
from ..store import blocks as block_store
from ..store import cases as case_store
from ..store import events as event_store
from ..store import subjects as subject_store
from ..timeutil import iso
from . import children, clock, effects
from .catalog import record_workflow, workflow, workflow_of
from .records import Advance, Created, Fire, FollowUp, NewCase, StartCase, Transition
from .validate import validate_new_case

# The followers, in the order they hear of a new case and of a status change.
CREATION_FOLLOWERS = (clock, children, effects)
TRANSITION_FOLLOWERS = (clock, effects, children)


# --- workflows and state --------------------------------------------------------


def state_of(conn: sqlite3.Connection, case: Mapping[str, Any], actor: str | None = None) -> CaseState:
    """What the rules need to know about a case."""
    blocks = tuple(
        rules.BlockState(
            r["name"], r["kind"], r["status"], None if r["child_case_id"] is None else bool(r["child_final"])
        )
        for r in block_store.block_states(conn, case["id"])
    )
    activities = tuple(
        rules.ActivityState(ids.fmt("activity", r["id"]), r["type"], r["state"], r["decision"])
        for r in activity_store.activity_states(conn, case["id"])
    )
    return CaseState(
        case["status"],
        blocks,
        activities,
        actor=actor,
        created_by=case.get("created_by"),
        last_editor=case.get("last_editor"),
    )


# --- looking cases up -------------------------------------------------------------


def resolve_id(conn: sqlite3.Connection, id_or_ref: str) -> int:
    """A case id (C-12, 12) or an external reference -> the case's number."""
    ref_id = case_store.id_for_ref(conn, id_or_ref)
    if ref_id is not None:
        return ref_id
    n = ids.parse("case", id_or_ref)
    if n is not None and case_store.exists(conn, n):
        return n
    raise NotFound(f"no case '{id_or_ref}' (looked up by id and by external reference)")


def load(conn: sqlite3.Connection, id_or_ref: str) -> dict[str, Any]:
    case = case_store.get(conn, resolve_id(conn, id_or_ref))
    assert case is not None
    return case


def get(conn: sqlite3.Connection, case_id: int) -> dict[str, Any]:
    case = case_store.get(conn, case_id)
    if case is None:
        raise NotFound(f"no case {ids.fmt('case', case_id)}")
    return case


def refusal(case: Mapping[str, Any], wf: Workflow, state: CaseState, verdict: Verdict, what: str) -> CasectlError:
    """The error for a verdict that says no: exit 6 for a bad request, else exit 4 naming what is allowed."""
    if verdict.invalid:
        return InvalidInput(verdict.reason)
    names = ", ".join(v.action for v in rules.allowed_actions(wf, state)) or "none"
    return NotAllowed(
        f"cannot {what} case {ids.fmt('case', case['id'])}: {verdict.reason}. "
        f"It is {case['status']}; allowed now: {names}"
    )


# --- creating ---------------------------------------------------------------------


def check_new_case(nc: NewCase, wf: Workflow) -> None:
    """Refuse a case the rules would not let exist: bad fields (exit 6), a status it may not start in (exit 4)."""
    errors = validate_new_case(nc, wf)
    if errors:
        raise InvalidInput(
            errors[0] if len(errors) == 1 else f"{len(errors)} problems with the new case",
            details=errors if len(errors) > 1 else None,
        )
    verdict = rules.check_create(wf, nc.status)
    if not verdict.allowed:
        raise InvalidInput(verdict.reason) if verdict.invalid else NotAllowed(verdict.reason)


def find_or_create_subject(conn: sqlite3.Connection, nc: NewCase, *, at: str) -> int | None:
    """Reuse the subject with this email (or subject ref); create one otherwise."""
    if nc.subject_id is not None:
        return nc.subject_id
    if not any((nc.subject_email, nc.subject_ref, nc.subject_name)):
        return None
    found = subject_store.find(conn, email=nc.subject_email, ref=nc.subject_ref)
    if found:
        # Fill in what was unknown; never overwrite what the subject already has.
        missing = {
            k: v
            for k, v in (
                ("name", nc.subject_name),
                ("dob", nc.subject_dob),
                ("country", nc.country),
                ("email", nc.subject_email),
                ("entity_type", nc.entity_type),
            )
            if v and not found.get(k)
        }
        if missing:
            subject_store.update(conn, found["id"], missing, at=at)
        return int(found["id"])
    return subject_store.insert(
        conn,
        {
            "ref": nc.subject_ref,
            "name": nc.subject_name,
            "email": nc.subject_email,
            "dob": nc.subject_dob,
            "country": nc.country,
            "entity_type": nc.entity_type,
        },
        at=at,
    )


def insert_cases(
    conn: sqlite3.Connection,
    new_cases: Iterable[NewCase],
    *,
    actor: str,
    now: datetime,
    event_data: Mapping[str, Any] | None = None,
) -> list[int]:
    """Create cases inside the caller's transaction; returns their numbers.

    Each is checked against its workflow (fields, creation status), gets its
    subject, its `created` event and its followers' work (SLA clock, initial
    blocks and activities, effects).
    """
    made = []
    at = iso(now)
    for nc in new_cases:
        wf = workflow(conn, nc.workflow)
        check_new_case(nc, wf)
        if nc.ref is not None and case_store.id_for_ref(conn, nc.ref) is not None:
            raise Conflict(f"a case with external reference '{nc.ref}' already exists")
        record_workflow(conn, wf, at=at, actor=actor)
        subject_id = find_or_create_subject(conn, nc, at=at)
        status = nc.status or wf.initial
        case_id = case_store.insert(
            conn,
            {
                "ref": nc.ref,
                "workflow": wf.name,
                "workflow_version": wf.version,
                "status": status,
                "final": int(wf.is_final(status)),
                "subject_id": subject_id,
                "parent_id": nc.parent_id,
                "data": nc.data,
                "registry_data": nc.registry_data,
                "assignee": nc.assignee,
                "team": nc.team,
                "priority": nc.priority,
                "created_at": at,
                "updated_at": at,
                "origin": nc.origin,
                "created_by": actor,
                "last_editor": actor,
            },
        )
        if nc.tags:
            case_store.set_tags(conn, case_id, add=sorted(set(nc.tags)))
        data = {
            "workflow": wf.name,
            "workflow_version": wf.version,
            "origin": nc.origin,
            **({"ref": nc.ref} if nc.ref else {}),
            **(event_data or {}),
        }
        event_id = event_store.append(
            conn, case_id, at=at, actor=actor, kind="created", to_status=status, data=data, prev_hash=""
        )
        record = Created(
            case_id=case_id, workflow=wf, status=status, event_id=event_id, at=now, actor=actor, new_case=nc
        )
        follow = [f for follower in CREATION_FOLLOWERS for f in follower.on_created(conn, record)]
        carry_out(conn, follow, actor=actor, now=now)
        advance(conn, case_id, actor=actor, now=now)
        made.append(case_id)
    return made


def insert_case(conn: sqlite3.Connection, nc: NewCase, *, actor: str, now: datetime, **kw: Any) -> int:
    """`insert_cases` for one case."""
    return insert_cases(conn, [nc], actor=actor, now=now, **kw)[0]


# --- changing status ----------------------------------------------------------------


def transition(
    conn: sqlite3.Connection,
    case: Mapping[str, Any],
    wf: Workflow,
    verdict: Verdict,
    *,
    actor: str,
    now: datetime,
    kind: str,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
    auto: bool = True,
) -> Transition:
    """Move a case as an allowed `verdict` says, record it, and let the followers react.

    The one place a case's status changes: blocks move, the decision is
    recorded with its decider and time, the event is appended, then the
    followers' follow-ups and (with `auto`) the automatic actions run.
    """
    assert verdict.allowed and verdict.target is not None
    to_status = verdict.target
    spec = wf.action(verdict.action) if kind != "status" else None
    action = spec.name if spec else None
    at = iso(now)
    changes: dict[str, Any] = {"status": to_status, "final": int(wf.is_final(to_status))}
    decision = verdict.decision
    if decision or wf.is_final(to_status):
        changes.update(decision=decision or to_status, decision_reason=reason, decided_at=at, decided_by=actor)
        decision = decision or to_status
    moved: list[dict[str, Any]] = []
    for frm, to in spec.block_moves if spec else ():
        rows = block_store.blocks_in_status(conn, case["id"], frm)
        block_store.move_blocks(conn, case["id"], frm, to, at=at)
        moved += [{"block": r["name"], "from": frm, "to": to} for r in rows]
    case_store.update(conn, case["id"], case["version"], changes, at=at)
    event_data = dict(data or {})
    if decision:
        event_data["decision"] = decision
    if moved:
        event_data["blocks"] = moved
    event_id = event_store.append(
        conn,
        case["id"],
        at=at,
        actor=actor,
        kind=kind,
        action=action,
        from_status=case["status"],
        to_status=to_status,
        reason=reason,
        data=event_data,
    )
    record = Transition(
        case_id=case["id"],
        workflow=wf,
        action=action,
        kind=kind,
        from_status=case["status"],
        to_status=to_status,
        event_id=event_id,
        at=now,
        actor=actor,
        moved_blocks=tuple(moved),
        decision=decision,
        reason=reason,
        messages=spec.messages if spec else (),
        parent_id=case.get("parent_id"),
    )
    follow = [f for follower in TRANSITION_FOLLOWERS for f in follower.on_transition(conn, record)]
    carry_out(conn, follow, actor=actor, now=now)
    if auto:
        advance(conn, case["id"], actor=actor, now=now)
    return record


def perform(
    conn: sqlite3.Connection,
    case: Mapping[str, Any],
    action: str,
    *,
    actor: str,
    now: datetime,
    trigger: str = rules.AGENT,
    reason: str | None = None,
    decision: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Transition:
    """Perform an agent action or a system event on `case`, if the rules allow it."""
    wf = workflow_of(conn, case)
    state = state_of(conn, case, actor)
    verdict = rules.check(wf, state, action, trigger, request=rules.Request(reason, decision))
    if not verdict.allowed:
        raise refusal(case, wf, state, verdict, action)
    kind = "action" if trigger == rules.AGENT else "system"
    return transition(conn, case, wf, verdict, actor=actor, now=now, kind=kind, reason=reason, data=data)


def status_verdict(
    conn: sqlite3.Connection, case: Mapping[str, Any], to_status: str, *, actor: str, reason: str | None
) -> tuple[Workflow, Verdict]:
    """The rules' verdict on setting `case`'s status directly."""
    wf = workflow_of(conn, case)
    state = state_of(conn, case, actor)
    return wf, rules.check_set_status(wf, state, to_status, request=rules.Request(reason))


def check_status(
    conn: sqlite3.Connection, case: Mapping[str, Any], to_status: str, *, actor: str, reason: str | None
) -> tuple[Workflow, Verdict]:
    """`status_verdict`, refused with the right exit code when the rules say no."""
    wf, verdict = status_verdict(conn, case, to_status, actor=actor, reason=reason)
    if not verdict.allowed:
        if verdict.invalid:
            raise InvalidInput(verdict.reason)
        raise NotAllowed(f"cannot set case {ids.fmt('case', case['id'])} to {to_status}: {verdict.reason}")
    return wf, verdict


def set_status(
    conn: sqlite3.Connection,
    case: Mapping[str, Any],
    to_status: str,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Transition:
    """Seed 003's "update case status", where the workflow allows it and as the rules say."""
    wf, verdict = check_status(conn, case, to_status, actor=actor, reason=reason)
    return transition(conn, case, wf, verdict, actor=actor, now=now, kind="status", reason=reason, data=data)


def advance(conn: sqlite3.Connection, case_id: int, *, actor: str, now: datetime) -> list[str]:
    """Fire the automatic actions whose guards hold now, one after another, to a fixed point.

    Bounded by rules.AUTO_LIMIT: the lint refuses cycles, the bound keeps a
    stored workflow that slipped through from hanging a command.
    """
    fired: list[str] = []
    for _ in range(rules.AUTO_LIMIT):
        case = get(conn, case_id)
        wf = workflow_of(conn, case)
        if not wf.automatic_from(case["status"]):
            break
        verdict = rules.next_automatic(wf, state_of(conn, case))
        if verdict is None:
            break
        transition(
            conn, case, wf, verdict, actor=actor, now=now, kind="system", data={"summary": "automatic"}, auto=False
        )
        fired.append(verdict.action)
    return fired


def created_batch(conn: sqlite3.Connection, records: Sequence[Created], *, actor: str, now: datetime) -> None:
    """The followers' work for cases that a batch wrote itself with their events and SLA clocks (`import`).

    The same followers as `insert_cases` but the clock; effects are asked once
    per workflow whether anything is subscribed at all.
    """
    quiet: dict[tuple[str, int], bool] = {}
    for record in records:
        wf = record.workflow
        key = (wf.name, wf.version)
        if key not in quiet:
            quiet[key] = effects.quiet(conn, wf)
        follow = children.on_created(conn, record)
        if not quiet[key]:
            follow += effects.on_created(conn, record)
        carry_out(conn, follow, actor=actor, now=now)
        if wf.automatic_from(record.status):
            advance(conn, record.case_id, actor=actor, now=now)


def carry_out(conn: sqlite3.Connection, follow_ups: Sequence[FollowUp], *, actor: str, now: datetime) -> None:
    """Do what the followers asked for, in order, inside the same transaction."""
    for f in follow_ups:
        if isinstance(f, Fire):
            case = get(conn, f.case_id)
            perform(conn, case, f.action, actor=actor, now=now, trigger=rules.SYSTEM, reason=f.reason, data=f.data)
        elif isinstance(f, Advance):
            advance(conn, f.case_id, actor=actor, now=now)
        elif isinstance(f, StartCase):
            child_id = insert_case(conn, f.new_case, actor=actor, now=now, event_data=f.event_data)
            if f.then is not None:
                carry_out(conn, f.then(conn, child_id), actor=actor, now=now)
