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

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from .. import ids, rules
from ..errors import CasectlError, Conflict, InvalidInput, NotAllowed, NotFound
from ..rules import CaseState, Verdict, Workflow
from ..store import activities as activity_store
from ..store import blocks as block_store
from ..store import bulk
from ..store import cases as case_store
from ..store import events as event_store
from ..store import subjects as subject_store
from ..store import users as user_store
from ..timeutil import iso
from . import children, clock, effects
from .catalog import record_workflow, workflow, workflow_of
from .records import Advance, Created, Fire, FollowUp, NewCase, StartCase, Transition
from .validate import validate_new_case

# The followers, in the order they hear of a new case and of a status change. A new case's
# SLA clock is part of its row (clock.creation_clock, written by insert_cases).
CREATION_FOLLOWERS = (children, effects)
TRANSITION_FOLLOWERS = (clock, effects, children)


# --- workflows and state --------------------------------------------------------


def state_of(
    conn: sqlite3.Connection, case: Mapping[str, Any], actor: str | None = None, *, wf: Workflow | None = None
) -> CaseState:
    """What the rules need to know about a case; with `wf`, and when its guards or routes have
    conditions on data, the case document those conditions read (rules/conditions.py)."""
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
        doc=case_document(conn, case) if wf is not None and wf.uses_conditions else None,
        roles=user_store.roles_of(conn, actor) if wf is not None and wf.uses_roles else frozenset(),
    )


def case_document(conn: sqlite3.Connection, case: Mapping[str, Any]) -> dict[str, Any]:
    """The case as conditions see it: its fields, data, subject, tags, blocks, activities, children
    (built by the children follower, which needs it too and does not import the kernel)."""
    return children.case_document(conn, case)


# --- looking cases up -------------------------------------------------------------


def resolve_id(conn: sqlite3.Connection, id_or_ref: str) -> int:
    """A case id (C-12, c12, 12) or an external reference (`ref:VALUE`, or any text that is no id form).

    An id form always names that case number: an external reference never
    shadows an id; a reference that reads like one is reached as `ref:VALUE`.
    """
    explicit = id_or_ref.startswith(ids.REF_PREFIX)
    n = None if explicit else ids.parse("case", id_or_ref)
    if n is not None:
        if case_store.exists(conn, n):
            return n
        hint = f"; for the external reference '{id_or_ref}' say ref:{id_or_ref}" if id_or_ref.strip().isdigit() else ""
        raise NotFound(f"no case '{id_or_ref}'{hint}")
    ref = id_or_ref[len(ids.REF_PREFIX) :] if explicit else id_or_ref
    ref_id = case_store.id_for_ref(conn, ref)
    if ref_id is not None:
        return ref_id
    raise NotFound(f"no case with external reference '{ref}'")


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


def check_new_case(nc: NewCase, wf: Workflow, *, now: datetime | None = None) -> None:
    """Refuse a case the rules would not let exist: bad fields (exit 6), a status it may not start in (exit 4).
    With `now`, a date of birth after it is a bad field."""
    errors = validate_new_case(nc, wf, now=now)
    if errors:
        raise InvalidInput(
            errors[0] if len(errors) == 1 else f"{len(errors)} problems with the new case",
            details=errors if len(errors) > 1 else None,
        )
    verdict = rules.check_create(wf, nc.status)
    if not verdict.allowed:
        raise InvalidInput(verdict.reason) if verdict.invalid else NotAllowed(verdict.reason)


SUBJECT_MATCHES = ("existing", "new")


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def subject_differences(found: Mapping[str, Any], nc: NewCase) -> list[str]:
    """How the case's subject differs from the subject its email or ref found: name (ignoring
    case and spacing), date of birth or entity type, each where both sides give one."""
    out = []
    if nc.subject_name and found.get("name") and not _same_name(nc.subject_name, found["name"]):
        out.append(f"name is '{found['name']}', not '{nc.subject_name}'")
    if nc.subject_dob and found.get("dob") and nc.subject_dob != found["dob"]:
        out.append(f"date of birth is {found['dob']}, not {nc.subject_dob}")
    if nc.entity_type and found.get("entity_type") and nc.entity_type != found["entity_type"]:
        out.append(f"entity type is {found['entity_type']}, not {nc.entity_type}")
    return out


def subject_conflict(found: Mapping[str, Any], nc: NewCase, differs: list[str]) -> Conflict:
    which = f"the email {nc.subject_email}" if nc.subject_email else f"the subject ref {nc.subject_ref}"
    row = f"case with ref {nc.ref}: " if nc.ref and nc.origin == "import" else ""
    return Conflict(
        f"{row}{which} belongs to subject {ids.fmt('subject', found['id'])}, whose {'; '.join(differs)}. "
        "Say which is meant: --subject existing (this case is theirs; their details stay) "
        "or --subject new (another subject who shares the email)"
    )


def find_or_create_subjects(
    conn: sqlite3.Connection, new_cases: Sequence[NewCase], next_subject: int, *, at: str
) -> list[int | None]:
    """Each new case's subject: the one it names (subject_id), else the one with its subject ref,
    else with its email, filled in where unknown (never overwritten); else a new one, numbered
    from `next_subject`. A subject made for an earlier case of the batch is reused like one
    already in the table."""
    email_key = subject_store.email_key
    keys = [email_key(nc.subject_email) if nc.subject_id is None else None for nc in new_cases]
    refs = sorted({ref for nc in new_cases if nc.subject_id is None and (ref := nc.subject_ref)})
    wanted = sorted({key for key in keys if key})
    by_ref = bulk.subjects_by_ref(conn, refs) if refs else {}
    by_key = bulk.subjects_by_email_key(conn, wanted) if wanted else {}
    subject_ids: list[int | None] = []
    new_subjects: list[dict[str, Any]] = []
    for nc, key in zip(new_cases, keys):
        if nc.subject_id is not None:
            subject_ids.append(nc.subject_id)
            continue
        if not (nc.subject_email or nc.subject_ref or nc.subject_name):
            subject_ids.append(None)
            continue
        found = (by_ref.get(nc.subject_ref) if nc.subject_ref else None) or (by_key.get(key) if key else None)
        if found is not None and nc.subject_match != "existing":
            differs = subject_differences(found, nc)
            if differs and nc.subject_match is None:
                raise subject_conflict(found, nc, differs)
            if differs:  # "new": another person who shares the email (its key stays with the first)
                found, key = None, None
        if found is not None:
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
                if found["id"] < next_subject:  # in the table; one made in this batch is still its dict
                    subject_store.update(conn, found["id"], missing, at=at)
                found.update(missing)
                if "email" in missing:
                    found["email_key"] = email_key(missing["email"])
                    by_key[found["email_key"]] = found
            subject_ids.append(found["id"])
            continue
        subject: dict[str, Any] = {
            "id": next_subject + len(new_subjects),
            "ref": nc.subject_ref,
            "name": nc.subject_name,
            "email": nc.subject_email,
            "email_key": key,
            "dob": nc.subject_dob,
            "country": nc.country,
            "entity_type": nc.entity_type or "person",
        }
        new_subjects.append(subject)
        if nc.subject_ref:
            by_ref[nc.subject_ref] = subject
        if key:
            by_key[key] = subject
        subject_ids.append(subject["id"])
    if new_subjects:
        bulk.insert_subjects(
            conn,
            [
                (s["id"], s["ref"], s["name"], s["email"], s["email_key"], s["dob"], s["country"], s["entity_type"])
                + ("{}", at, at)
                for s in new_subjects
            ],
        )
    return subject_ids


def check_refs(conn: sqlite3.Connection, new_cases: Sequence[NewCase]) -> None:
    """Refuse an external reference that a case already has, or that two new cases share (exit 3)."""
    refs = [nc.ref for nc in new_cases if nc.ref is not None]
    taken = bulk.case_ids_for_refs(conn, refs) if refs else {}
    seen: set[str] = set()
    for ref in refs:
        if ref in taken or ref in seen:
            raise Conflict(f"a case with external reference '{ref}' already exists")
        seen.add(ref)


class _Start(NamedTuple):
    """What every new case of one workflow created in one status shares (one batch, one `now`)."""

    workflow: Workflow
    status: str
    final: int
    clock: tuple[str | None, str | None, int | None]  # due_at, sla_paused_at, sla_remaining
    automatic: bool  # an automatic action may fire from `status`
    followers: tuple[Any, ...]  # the creation followers with something to do for this workflow


_NO_CLOCK = (None, None, None)  # a case without an SLA clock


def insert_cases(
    conn: sqlite3.Connection,
    new_cases: Iterable[NewCase],
    *,
    actor: str,
    now: datetime,
    event_data: Mapping[str, Any] | None = None,
    each_event_data: Sequence[Mapping[str, Any]] | None = None,
    checked: bool = False,
) -> list[int]:
    """Create cases inside the caller's transaction, all at once; returns their numbers.

    The one way a case comes to exist: `create` is this for one case, `import`
    for a batch of rows. Each case is checked against its workflow (fields,
    creation status) and for a free external reference, unless the caller
    `checked` every case itself (the importer does, to report each bad row).
    Then subjects are reused or made (`find_or_create_subjects`), the case rows
    go in with their SLA clocks (clock.creation_clock) and their search rows,
    then tags and the `created` events (`event_data` in each, and
    `each_event_data[i]` in the i-th), and then each case's followers run, with
    their follow-ups and the automatic actions (`created_followers`).
    """
    new_cases = list(new_cases)
    if not new_cases:
        return []
    at = iso(now)
    wfs: dict[str, Workflow] = {}
    for nc in new_cases:
        wf = wfs.get(nc.workflow)
        if wf is None:
            wf = wfs[nc.workflow] = workflow(conn, nc.workflow)
        if not checked:
            check_new_case(nc, wf, now=now)
    if not checked:
        check_refs(conn, new_cases)
    listening: dict[str, tuple[Any, ...]] = {}
    for name, wf in wfs.items():
        record_workflow(conn, wf, at=at, actor=actor)
        # A follower that can tell once per workflow that a new case gives it nothing to do is asked once.
        listening[name] = tuple(f for f in CREATION_FOLLOWERS if not (hasattr(f, "quiet") and f.quiet(conn, wf)))
    next_case, next_subject = bulk.next_ids(conn)
    subject_ids = find_or_create_subjects(conn, new_cases, next_subject, at=at)
    shared = dict(event_data or {})
    to_json = bulk.case_json
    known: dict[tuple[str, str | None], _Start] = {}
    starts: list[_Start] = []
    case_rows: list[tuple] = []
    tag_rows: list[tuple[int, str]] = []
    events: list[event_store.NewEvent] = []
    for i, nc in enumerate(new_cases):
        case_id = next_case + i
        start = known.get((nc.workflow, nc.status))
        if start is None:
            wf = wfs[nc.workflow]
            status = nc.status or wf.initial
            start = known[nc.workflow, nc.status] = _Start(
                wf,
                status,
                int(wf.is_final(status)),
                clock.creation_clock(wf, status, now) or _NO_CLOCK,
                wf.automatic_from(status),
                listening[nc.workflow],
            )
        starts.append(start)
        wf, status, final, (due_at, paused_at, remaining), _, _ = start
        case_rows.append(
            (
                case_id,
                nc.ref,
                wf.name,
                wf.version,
                status,
                final,
                subject_ids[i],
                nc.parent_id,
                to_json(nc.data) if nc.data else "{}",
                to_json(nc.registry_data) if nc.registry_data else "{}",
                nc.assignee,
                nc.team,
                nc.priority,
                at,
                at,
                nc.origin,
                actor,
                actor,
                due_at,
                paused_at,
                remaining,
                at,
            )
        )
        if nc.tags:
            tag_rows.extend((case_id, t) for t in sorted(set(nc.tags)))
        data = {"workflow": wf.name, "workflow_version": wf.version, "origin": nc.origin}
        if nc.ref:
            data["ref"] = nc.ref
        data.update(shared)
        if each_event_data is not None:
            data.update(each_event_data[i])
        events.append((case_id, at, actor, "created", None, None, status, None, data, ""))
    bulk.insert_cases(conn, case_rows)
    if tag_rows:
        bulk.insert_tags(conn, tag_rows, new_cases=True)
    event_ids = event_store.append_many(conn, events)
    case_ids = [row[0] for row in case_rows]
    created_followers(conn, new_cases, case_ids, event_ids, starts, actor=actor, now=now)
    return case_ids


def insert_case(conn: sqlite3.Connection, nc: NewCase, *, actor: str, now: datetime, **kw: Any) -> int:
    """`insert_cases` for one case."""
    return insert_cases(conn, [nc], actor=actor, now=now, **kw)[0]


def creation_run(conn: sqlite3.Connection) -> contextlib.AbstractContextManager[None]:
    """Many `insert_cases` calls in the caller's transaction (an import's batches) as one run:
    what is derived from the new cases as a whole, their full-text search rows, is written
    once when the run ends (store.bulk.search_rows_later) instead of once per call."""
    return bulk.search_rows_later(conn)


def created_record(
    case_id: int, wf: Workflow, status: str, event_id: int, at: datetime, actor: str, nc: NewCase
) -> Created:
    """`Created(case_id=..., ...)`, the same frozen record, made without the generated __init__:
    that one sets each field through object.__setattr__, and for a batch of cases most followers
    only glance at it, it was a sixth of the kernel's Python time (tests/test_import.py holds
    the two equal)."""
    record = object.__new__(Created)
    record.__dict__.update(
        case_id=case_id, workflow=wf, status=status, event_id=event_id, at=at, actor=actor, new_case=nc
    )
    return record


def created_followers(
    conn: sqlite3.Connection,
    new_cases: Sequence[NewCase],
    case_ids: Sequence[int],
    event_ids: Sequence[int],
    starts: Sequence[_Start],
    *,
    actor: str,
    now: datetime,
) -> None:
    """Each new case's followers, then their follow-ups and the case's automatic actions, case by case."""
    for nc, case_id, event_id, start in zip(new_cases, case_ids, event_ids, starts):
        follow: list[FollowUp] = []
        if start.followers:
            record = created_record(case_id, start.workflow, start.status, event_id, now, actor, nc)
            for follower in start.followers:
                follow += follower.on_created(conn, record)
        if follow:
            carry_out(conn, follow, actor=actor, now=now)
        if follow or start.automatic:  # without follow-ups the case is still in start.status
            advance(conn, case_id, actor=actor, now=now)


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
    if to_status != case["status"]:
        changes["status_since"] = at
    decision = verdict.decision
    reopened = wf.is_final(case["status"]) and not wf.is_final(to_status)
    if reopened:  # a closed case re-opened (the workflow declares it): its decision no longer stands
        changes.update(decision=None, decision_reason=None, decided_at=None, decided_by=None)
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
    if reopened:
        event_data["reopened"] = case.get("decision") or case["status"]
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
    state = state_of(conn, case, actor, wf=wf)
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
    state = state_of(conn, case, actor, wf=wf)
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
        verdict = rules.next_automatic(wf, state_of(conn, case, wf=wf))
        if verdict is None:
            break
        transition(
            conn, case, wf, verdict, actor=actor, now=now, kind="system", data={"summary": "automatic"}, auto=False
        )
        fired.append(verdict.action)
    return fired


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
