"""Case use cases: create, look up, act, system events, direct status, history.

Each function takes the connection, the actor and `now` explicitly, runs in
one transaction, raises domain errors and never prints.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import ids, rules
from ..errors import Conflict, InvalidInput
from ..rules import Verdict, Workflow
from ..store import blocks as block_store
from ..store import cases as case_store
from ..store import events as event_store
from ..store import rollback, write
from . import content, engage, lifecycle, outbox, payments, queue, routines, validate
from .records import NewCase

__all__ = ["NewCase", "Outcome", "act", "act_in", "create", "history", "load", "set_status", "view"]

PRIORITIES = validate.PRIORITIES


# --- looking cases up ---------------------------------------------------------

resolve_id = lifecycle.resolve_id
load = lifecycle.load
workflow_of = lifecycle.workflow_of
state_of = lifecycle.state_of
country_codes = validate.country_codes
validate_new_case = validate.validate_new_case


# --- creating -----------------------------------------------------------------


def create(conn: sqlite3.Connection, nc: NewCase, *, actor: str, now: datetime) -> dict[str, Any]:
    with write(conn):
        case_id = lifecycle.insert_case(conn, nc, actor=actor, now=now)
        return lifecycle.get(conn, case_id)


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
    state = state_of(conn, case, actor, wf=wf)
    verdict = rules.check(wf, state, action, trigger, request=rules.Request(reason, decision))
    if not verdict.allowed:
        raise lifecycle.refusal(case, wf, state, verdict, action)
    spec = wf.action(action)
    assert spec is not None
    outcome = Outcome(case, verdict, case["status"], dry_run=dry_run)
    outcome.changes = {"status": [case["status"], verdict.target]}
    if spec.block_moves:
        outcome.changes["blocks"] = [
            {"block": r["name"], "from": r["status"], "to": to}
            for frm, to in spec.block_moves
            for r in block_store.blocks_in_status(conn, case["id"], frm)
        ]
    if dry_run:
        rollback(conn)  # nothing is written; `write` sees no transaction left
        return outcome
    kind = "action" if trigger == rules.AGENT else "system"
    done = lifecycle.transition(conn, case, wf, verdict, actor=actor, now=now, kind=kind, reason=reason)
    outcome.event_id = done.event_id
    outcome.case = lifecycle.get(conn, case["id"])
    return outcome


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
    """Seed 003's "update case status", where the workflow allows it and as the rules say."""
    with write(conn):
        case = load(conn, id_or_ref)
        _check_expectations(case, expect_status, expect_version)
        wf, verdict = lifecycle.check_status(conn, case, to_status, actor=actor, reason=reason)
        outcome = Outcome(
            case, verdict, case["status"], dry_run=dry_run, changes={"status": [case["status"], to_status]}
        )
        if dry_run:
            rollback(conn)
            return outcome
        done = lifecycle.transition(conn, case, wf, verdict, actor=actor, now=now, kind="status", reason=reason)
        outcome.event_id = done.event_id
        outcome.case = lifecycle.get(conn, case["id"])
        return outcome


def history(conn: sqlite3.Connection, id_or_ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = load(conn, id_or_ref)
    return case, event_store.for_case(conn, case["id"])


def view(
    conn: sqlite3.Connection, id_or_ref: str, *, actor: str | None, now: datetime, history_limit: int = 10
) -> dict[str, Any]:
    """Everything `show` prints: the case, what may happen now and why not the rest."""
    case = load(conn, id_or_ref)
    wf = workflow_of(conn, case)
    state = state_of(conn, case, actor, wf=wf)
    verdicts = [rules.check(wf, state, a.name) for a in wf.actions if a.trigger == rules.AGENT]
    marked = sum(1 for b in state.blocks if b.status == rules.model.REUPLOAD_NEEDED)
    return {
        "case": case,
        "workflow": wf,
        "allowed": [v for v in verdicts if v.allowed],
        "refused": [v for v in verdicts if not v.allowed and case["status"] in _sources(wf, v.action)],
        "reupload_marks": marked,
        "history": event_store.for_case(conn, case["id"], limit=history_limit, newest=True),
        "events_total": case_store.event_count(conn, case["id"]),
        "parts": show_parts(conn, case=case, wf=wf, actor=actor, now=now),
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
    bad = validate.non_finite(value)
    if bad is not None:
        raise InvalidInput(f"{what}: {bad or 'the value'} {validate.NOT_FINITE}")
    return value


def _sources(wf: Workflow, action: str) -> tuple[str, ...]:
    spec = wf.action(action)
    return spec.sources if spec else ()


def show_parts(
    conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None, now: datetime
) -> dict[str, Any]:
    """Extra parts of `show`, by JSON key (blocks, children, activities, SLA, notes, appointments, payments,
    deliveries)."""
    parts: dict[str, Any] = {}
    for module in (content, queue, engage, payments, outbox, routines):
        parts.update(module.show_parts(conn, case=case, wf=wf, actor=actor, now=now))
    return parts
