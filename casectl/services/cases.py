"""Case use cases: create, look up, act, system events, direct status, history.

Each function takes the connection, the actor and `now` explicitly, runs in
one transaction, raises domain errors and never prints.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import ids, rules
from ..errors import Conflict, InvalidInput, NotAllowed, NotFound
from ..rules import CaseState, Verdict, Workflow
from ..store import cases as case_store
from ..store import events as event_store
from ..store import rollback, write
from ..store import subjects as subject_store
from ..timeutil import iso, valid_date
from . import hooks
from . import workflows as workflow_service

PRIORITIES = ("low", "normal", "high", "urgent")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@functools.lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from pycountry (loaded on first use)."""
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


# --- looking cases up ---------------------------------------------------------


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


def workflow_of(conn: sqlite3.Connection, case: dict[str, Any]) -> Workflow:
    """The workflow version the case was created with."""
    return workflow_service.get(conn, case["workflow"], case["workflow_version"])


def state_of(conn: sqlite3.Connection, case: dict[str, Any], actor: str | None = None) -> CaseState:
    """What the rules need to know about a case."""
    blocks = tuple(
        rules.BlockState(
            r["name"], r["kind"], r["status"], None if r["child_case_id"] is None else bool(r["child_final"])
        )
        for r in case_store.block_states(conn, case["id"])
    )
    activities = tuple(
        rules.ActivityState(ids.fmt("activity", r["id"]), r["type"], r["state"], r["decision"])
        for r in case_store.activity_states(conn, case["id"])
    )
    return CaseState(
        case["status"],
        blocks,
        activities,
        actor=actor,
        created_by=case.get("created_by"),
        last_editor=case.get("last_editor"),
    )


# --- creating -----------------------------------------------------------------


@dataclass
class NewCase:
    workflow: str
    ref: str | None = None
    subject_name: str | None = None
    subject_email: str | None = None
    subject_dob: str | None = None
    subject_ref: str | None = None
    country: str | None = None
    entity_type: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    registry_data: dict[str, Any] = field(default_factory=dict)
    assignee: str | None = None
    team: str | None = None
    tags: list[str] = field(default_factory=list)
    priority: str = "normal"
    status: str | None = None
    origin: str = "command"
    parent_id: int | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)


def validate_new_case(nc: NewCase, wf: Workflow) -> list[str]:
    """Field problems as 'field: reason' (empty when all is well)."""
    errors = []
    if nc.subject_email is not None and not _EMAIL.match(nc.subject_email):
        errors.append(f"subject_email: '{nc.subject_email}' is not an email address")
    if nc.subject_dob is not None and not valid_date(nc.subject_dob):
        errors.append(f"subject_dob: '{nc.subject_dob}' is not a date (YYYY-MM-DD)")
    if nc.country is not None and not _COUNTRY.match(nc.country):
        errors.append(f"country: '{nc.country}' is not an ISO 3166 alpha-2 code like GB or HK")
    elif nc.country is not None and nc.country not in country_codes():
        errors.append(f"country: '{nc.country}' is not an ISO 3166 country code")
    if nc.priority not in PRIORITIES:
        errors.append(f"priority: '{nc.priority}' is not one of {', '.join(PRIORITIES)}")
    if nc.status is not None and wf.status(nc.status) is None:
        errors.append(f"status: '{nc.status}' is not a status of workflow {wf.name} ({', '.join(wf.status_names)})")
    if nc.ref is not None and not nc.ref.strip():
        errors.append("ref: must not be blank")
    for tag in nc.tags:
        if not tag.strip() or "," in tag:
            errors.append(f"tag: '{tag}' must be non-blank and contain no comma")
    return errors


def find_or_create_subject(conn: sqlite3.Connection, nc: NewCase, *, at: str) -> int | None:
    """Reuse the subject with this email (or subject ref); create one otherwise."""
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
        return found["id"]
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


def create(conn: sqlite3.Connection, nc: NewCase, *, actor: str, now: datetime) -> dict[str, Any]:
    with write(conn):
        case_id = insert_case(conn, nc, actor=actor, now=now)
        return case_store.get(conn, case_id)


def insert_case(
    conn: sqlite3.Connection,
    nc: NewCase,
    *,
    actor: str,
    now: datetime,
    wf: Workflow | None = None,
    event_data: dict[str, Any] | None = None,
) -> int:
    """Insert one case inside the caller's transaction; returns its number."""
    wf = wf or workflow_service.get(conn, nc.workflow)
    errors = validate_new_case(nc, wf)
    if errors:
        raise InvalidInput(
            errors[0] if len(errors) == 1 else f"{len(errors)} problems with the new case",
            details=errors if len(errors) > 1 else None,
        )
    if nc.ref is not None and case_store.id_for_ref(conn, nc.ref) is not None:
        raise Conflict(f"a case with external reference '{nc.ref}' already exists")
    at = iso(now)
    workflow_service.ensure_recorded(conn, wf, now=now, actor=actor)
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
    event_id = event_store.append(
        conn,
        case_id,
        at=at,
        actor=actor,
        kind="created",
        to_status=status,
        data={
            "workflow": wf.name,
            "workflow_version": wf.version,
            "origin": nc.origin,
            **({"ref": nc.ref} if nc.ref else {}),
            **(event_data or {}),
        },
        prev_hash="",
    )
    hooks.after_create(conn, case_id=case_id, wf=wf, nc=nc, actor=actor, now=now, event_id=event_id)
    return case_id


# --- acting -------------------------------------------------------------------


@dataclass
class Outcome:
    """What an action did (or, with dry_run, would do)."""

    case: dict[str, Any]
    verdict: Verdict
    from_status: str
    event_id: int | None = None
    dry_run: bool = False
    changes: dict[str, Any] = field(default_factory=dict)


def _refuse(case: dict[str, Any], wf: Workflow, state: CaseState, verdict: Verdict) -> NotAllowed:
    allowed = rules.allowed_actions(wf, state)
    names = ", ".join(v.action for v in allowed) or "none"
    return NotAllowed(
        f"cannot {verdict.action} case {ids.fmt('case', case['id'])}: {verdict.reason}. "
        f"It is {case['status']}; allowed now: {names}"
    )


def _check_expectations(case: dict[str, Any], expect_status: str | None, expect_version: int | None) -> None:
    if expect_status is not None and case["status"] != expect_status:
        raise Conflict(f"case {ids.fmt('case', case['id'])} is {case['status']}, not {expect_status}; nothing changed")
    if expect_version is not None and case["version"] != expect_version:
        raise Conflict(
            f"case {ids.fmt('case', case['id'])} is at version {case['version']}, not {expect_version}; nothing changed"
        )


def act(conn: sqlite3.Connection, id_or_ref: str, action: str, **options: Any) -> Outcome:
    """Perform an agent action (or, with trigger=system, a system event) in its own transaction.

    The options are `act_in`'s.
    """
    with write(conn):
        return act_in(conn, id_or_ref, action, **options)


def act_in(
    conn: sqlite3.Connection,
    id_or_ref: str,
    action: str,
    *,
    actor: str,
    now: datetime,
    trigger: str = rules.AGENT,
    reason: str | None = None,
    decision: str | None = None,
    expect_status: str | None = None,
    expect_version: int | None = None,
    dry_run: bool = False,
) -> Outcome:
    """`act` inside the caller's transaction (`act -` applies many in one)."""
    case = load(conn, id_or_ref)
    _check_expectations(case, expect_status, expect_version)
    wf = workflow_of(conn, case)
    state = state_of(conn, case, actor)
    verdict = rules.check(wf, state, action, trigger)
    if not verdict.allowed:
        raise _refuse(case, wf, state, verdict)
    spec = wf.action(action)
    assert spec is not None
    if spec.reason_required and not (reason and reason.strip()):
        raise InvalidInput(f"{spec.name} needs a reason: add --reason TEXT")
    if spec.takes_decision:
        decision = decision or wf.decisions[0]
        if decision not in wf.decisions:
            raise InvalidInput(f"decision '{decision}' is not one of {', '.join(wf.decisions)}")
    elif decision is not None:
        raise InvalidInput(f"{spec.name} takes no --decision")
    outcome = Outcome(case, verdict, case["status"], dry_run=dry_run)
    outcome.changes = {"status": [case["status"], verdict.target]}
    if spec.block_moves:
        outcome.changes["blocks"] = [
            {"block": r["name"], "from": r["status"], "to": to}
            for frm, to in spec.block_moves
            for r in case_store.blocks_in_status(conn, case["id"], frm)
        ]
    if dry_run:
        rollback(conn)  # nothing is written; `write` sees no transaction left
        return outcome
    outcome.event_id = transition(
        conn,
        case,
        wf,
        spec.name,
        verdict.target,
        actor=actor,
        now=now,
        reason=reason,
        kind="system" if trigger == rules.SYSTEM else "action",
        decision=spec.decision or decision,
        block_moves=spec.block_moves,
        messages=spec.messages,
    )
    outcome.case = case_store.get(conn, case["id"])
    return outcome


def transition(
    conn: sqlite3.Connection,
    case: dict[str, Any],
    wf: Workflow,
    action: str | None,
    to_status: str,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    kind: str = "action",
    decision: str | None = None,
    block_moves: tuple[tuple[str, str], ...] = (),
    messages: tuple[str, ...] = (),
    data: dict[str, Any] | None = None,
) -> int:
    """Move a case to `to_status` inside the caller's transaction and record it.

    The one place a case's status changes: blocks move, the decision is
    recorded, the event is appended and the hooks (child cases, outbox) run.
    """
    at = iso(now)
    changes: dict[str, Any] = {"status": to_status, "final": int(wf.is_final(to_status))}
    if decision:
        changes.update(decision=decision, decision_reason=reason, decided_at=at)
    elif wf.is_final(to_status):
        changes.update(decided_at=at)
    moved = []
    for frm, to in block_moves:
        rows = case_store.blocks_in_status(conn, case["id"], frm)
        case_store.move_blocks(conn, case["id"], frm, to, at=at)
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
    hooks.after_transition(
        conn,
        case_id=case["id"],
        wf=wf,
        action=action,
        from_status=case["status"],
        to_status=to_status,
        actor=actor,
        now=now,
        event_id=event_id,
        messages=messages,
        moved_blocks=moved,
        reason=reason,
        decision=decision,
    )
    return event_id


def set_status(
    conn: sqlite3.Connection,
    id_or_ref: str,
    to_status: str,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    expect_status: str | None = None,
    expect_version: int | None = None,
    dry_run: bool = False,
) -> Outcome:
    """Seed 003's "update case status", where the workflow allows it."""
    with write(conn):
        case = load(conn, id_or_ref)
        _check_expectations(case, expect_status, expect_version)
        wf = workflow_of(conn, case)
        state = state_of(conn, case, actor)
        verdict = rules.check_set_status(wf, state, to_status)
        if not verdict.allowed:
            raise NotAllowed(f"cannot set case {ids.fmt('case', case['id'])} to {to_status}: {verdict.reason}")
        outcome = Outcome(
            case, verdict, case["status"], dry_run=dry_run, changes={"status": [case["status"], to_status]}
        )
        if dry_run:
            rollback(conn)
            return outcome
        decision = to_status if wf.is_final(to_status) else None
        outcome.event_id = transition(
            conn, case, wf, None, to_status, actor=actor, now=now, reason=reason, kind="status", decision=decision
        )
        outcome.case = case_store.get(conn, case["id"])
        return outcome


def history(conn: sqlite3.Connection, id_or_ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = load(conn, id_or_ref)
    return case, event_store.for_case(conn, case["id"])


def view(conn: sqlite3.Connection, id_or_ref: str, *, actor: str | None, history_limit: int = 10) -> dict[str, Any]:
    """Everything `show` prints: the case, what may happen now and why not the rest."""
    case = load(conn, id_or_ref)
    wf = workflow_of(conn, case)
    state = state_of(conn, case, actor)
    verdicts = [rules.check(wf, state, a.name) for a in wf.actions if a.trigger == rules.AGENT]
    marked = sum(1 for b in state.blocks if b.status == rules.model.REUPLOAD_NEEDED)
    return {
        "case": case,
        "workflow": wf,
        "allowed": [v for v in verdicts if v.allowed],
        "refused": [v for v in verdicts if not v.allowed and case["status"] in wf.action(v.action).sources],
        "reupload_marks": marked,
        "history": event_store.for_case(conn, case["id"], limit=history_limit, newest=True),
        "events_total": case_store.event_count(conn, case["id"]),
        "sections": hooks.show_sections(conn, case=case, wf=wf, actor=actor),
    }


def parse_data(text: str | None, what: str = "--data") -> dict[str, Any]:
    """A JSON object given inline."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{what}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what}: must be a JSON object, got {type(value).__name__}")
    return value
