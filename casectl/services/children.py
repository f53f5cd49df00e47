"""What a case holds when it is created or changes status: blocks, activities, child cases.

A follower of the lifecycle kernel. On creation it makes the case's initial
blocks (a kyc block starts a child case, seed 000's "child workflow") and the
activities its workflow requires (seed 002). On a status change it sends the
messages the action declares (the re-upload request; a KYC block gets a new
flow), tells a parent that its child concluded (the parent's block goes back
for review and the parent advances), and settles a final parent's open
children as its workflow says (default: withdrawn). Whatever needs the
kernel is returned as a follow-up; this module never imports it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from .. import ids, rules
from ..errors import InvalidInput, NotFound
from ..rules import Workflow
from ..rules import blocks as block_rules
from ..rules.model import INDEX, PENDING_ID_VERIFICATION, PENDING_REUPLOAD, block_name_problem
from ..store import activities as activity_store
from ..store import blocks as block_store
from ..store import cases as case_store
from ..store import events as event_store
from ..store import outbox as outbox_store
from ..timeutil import iso, parse_time
from . import catalog
from .records import Advance, Created, Fire, FollowUp, NewCase, StartCase, Transition
from .validate import validate_new_case

INITIAL_ACTIVITY_STATE = "pending"


def _cid(n: int | None) -> str | None:
    return ids.fmt("case", n)


# --- small writers shared with the block and activity use cases ---------------------


def touch(
    conn: sqlite3.Connection, case_id: int, *, at: str, editor: str | None = None, changes: dict[str, Any] | None = None
) -> None:
    """Bump the case's version (and, for data edits, its last editor: the four-eyes rule reads it)."""
    case = case_store.get(conn, case_id)
    assert case is not None
    more = dict(changes or {})
    if editor is not None:
        more["last_editor"] = editor
    case_store.update(conn, case_id, case["version"], more, at=at)


def event(
    conn: sqlite3.Connection,
    case_id: int,
    event_kind: str,
    /,
    *,
    actor: str,
    at: str,
    summary: str,
    reason: str | None = None,
    **data: Any,
) -> int:
    return event_store.append(
        conn,
        case_id,
        at=at,
        actor=actor,
        kind=event_kind,
        reason=reason,
        data={"summary": summary, **{k: v for k, v in data.items() if v is not None}},
    )


def queue_email(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    event_id: int,
    to: str,
    subject: str,
    text: str,
    template: str,
    at: str,
    **extra: Any,
) -> int:
    payload = {"subject": subject, "text": text, "html": None, "template": template, "case": _cid(case_id), **extra}
    return outbox_store.enqueue(
        conn, case_id=case_id, event_id=event_id, kind="email", target=to, payload=payload, at=at
    )


# --- blocks and KYC flows -------------------------------------------------------------


def check_new_block(wf: Workflow, kind: str, name: str, existing: set[str]) -> None:
    problem = block_rules.valid_kind(wf, kind)
    if problem:
        raise InvalidInput(problem)
    problem = block_name_problem(name)
    if problem:
        raise InvalidInput(f"block name '{name}': {problem}")
    if name in existing:
        raise InvalidInput(f"block name '{name}' is already used on this case")


def kyc_case(
    parent: Mapping[str, Any],
    wf: Workflow,
    block_name: str,
    data: Mapping[str, Any],
    *,
    subject_id: int | None = None,
    reupload_of: int | None = None,
    at: str | None = None,
    workflow: str | None = None,
) -> NewCase:
    """A child case on `workflow` (default: the workflow's child workflow): a KYC flow for one person (a UBO)."""
    nc = NewCase(
        workflow=workflow or wf.children.workflow,
        parent_id=parent["id"],
        origin=f"case:{_cid(parent['id'])}",
        data={**data, **({"reupload_of": _cid(reupload_of)} if reupload_of else {})},
        subject_id=subject_id,
    )
    if subject_id is None:
        nc.subject_name = data.get("name") if isinstance(data.get("name"), str) else None
        nc.subject_email = data.get("email") if isinstance(data.get("email"), str) else None
        nc.subject_dob = data.get("dob") if isinstance(data.get("dob"), str) else None
        country = data.get("country")
        nc.country = country.upper() if isinstance(country, str) else None
        nc.entity_type = "person"
    errors = validate_new_case(nc, wf, now=parse_time(at) if at else None)
    if errors:
        raise InvalidInput(f"kyc block {block_name}: {errors[0]}", details=errors[1:] or None)
    return nc


def _kyc_flow_email(
    conn: sqlite3.Connection,
    parent: Mapping[str, Any],
    child_id: int,
    block_name: str,
    *,
    event_id: int,
    at: str,
    again: bool,
) -> str | None:
    child = case_store.get(conn, child_id)
    to = child.get("subject_email") if child else None
    if not to or child is None:
        return None
    company = parent.get("subject_name") or _cid(parent["id"])
    who = child.get("subject_name") or "there"
    text = (
        f"Hello {who},\n\n"
        + (
            "We could not accept your identity verification and need you to go through it again"
            if again
            else "Please verify your identity"
        )
        + f" for {company} (case {_cid(parent['id'])}).\n\nYour verification case is {_cid(child_id)}.\n"
    )
    queue_email(
        conn,
        case_id=parent["id"],
        event_id=event_id,
        to=to,
        subject=f"{'New identity verification needed' if again else 'Please verify your identity'}: {company}",
        text=text,
        template="kyc_flow",
        at=at,
        child=_cid(child_id),
        block=block_name,
    )
    return str(to)


def new_block(
    conn: sqlite3.Connection,
    case: Mapping[str, Any],
    wf: Workflow,
    kind: str,
    name: str,
    data: dict[str, Any],
    *,
    actor: str,
    at: str,
) -> tuple[int, list[FollowUp]]:
    """Add a block to `case`; a kyc block's child case comes back as a follow-up."""
    existing = {b["name"] for b in block_store.blocks(conn, case["id"])}
    check_new_block(wf, kind, name, existing)
    if kind != "kyc":
        block_id = block_store.insert_block(
            conn, case_id=case["id"], name=name, kind=kind, data=data, status=None, child_case_id=None, at=at
        )
        event(conn, case["id"], "block.add", actor=actor, at=at, summary=f"{kind} block {name} added", block=name,
              kind=kind)  # fmt: skip
        return block_id, []
    nc = kyc_case(case, wf, name, data, at=at)
    block_id, start = _kyc_block(conn, case, name, data, nc, actor=actor, at=at)
    return block_id, [start]


def _kyc_block(
    conn: sqlite3.Connection,
    case: Mapping[str, Any],
    name: str,
    data: dict[str, Any],
    nc: NewCase,
    *,
    actor: str,
    at: str,
) -> tuple[int, StartCase]:
    """A kyc block waiting on its child case `nc`, which comes back as a follow-up to start."""
    block_id = block_store.insert_block(
        conn,
        case_id=case["id"],
        name=name,
        kind="kyc",
        data=data,
        status=PENDING_ID_VERIFICATION,
        child_case_id=None,
        at=at,
    )

    def link(conn: sqlite3.Connection, child_id: int) -> list[FollowUp]:
        block_store.update_block(conn, block_id, {"child_case_id": child_id}, at=at)
        event_id = event(
            conn,
            case["id"],
            "block.add",
            actor=actor,
            at=at,
            summary=f"kyc block {name} added with KYC case {_cid(child_id)}",
            block=name,
            kind="kyc",
            child=_cid(child_id),
        )
        _kyc_flow_email(conn, case, child_id, name, event_id=event_id, at=at, again=False)
        return []

    return block_id, StartCase(new_case=nc, event_data={"parent": _cid(case["id"]), "block": name}, then=link)


# --- follower: creation ------------------------------------------------------------------


def on_created(conn: sqlite3.Connection, record: Created) -> list[FollowUp]:
    """Create the case's initial blocks and the activities its workflow requires."""
    wf, nc = record.workflow, record.new_case
    for_each = wf.children.for_each is not None and wf.children.for_each.starts_in(record.status, created=True)
    if not (nc.blocks or wf.requirements or for_each):
        return []
    case = case_store.get(conn, record.case_id)
    assert case is not None
    at = iso(record.at)
    follow: list[FollowUp] = []
    for spec in nc.blocks:
        _, more = new_block(
            conn, case, wf, spec["kind"], spec["name"], dict(spec.get("data") or {}), actor=record.actor, at=at
        )
        follow += more
    for req in wf.requirements:
        snapshot = {
            "type": req.type,
            "label": req.label or None,
            "team": req.team,
            "config": dict(req.config),
            "workflow": wf.name,
            "workflow_version": wf.version,
        }
        aid = activity_store.insert_activity(
            conn,
            case_id=record.case_id,
            type=req.type,
            label=req.label or None,
            state=INITIAL_ACTIVITY_STATE,
            assignee=None,
            team=req.team,
            requirement={k: v for k, v in snapshot.items() if v is not None},
            at=at,
            actor=record.actor,
        )
        event(
            conn,
            record.case_id,
            "activity.add",
            actor=record.actor,
            at=at,
            summary=f"{ids.fmt('activity', aid)} {req.type} required by {wf.name} v{wf.version}"
            + (f" (team {req.team})" if req.team else ""),
            activity=ids.fmt("activity", aid),
            type=req.type,
        )
    if for_each:
        follow += start_for_each(conn, record.case_id, wf, actor=record.actor, at=at)
    return follow


# --- follower: status changes -----------------------------------------------------------------


def on_transition(conn: sqlite3.Connection, record: Transition) -> list[FollowUp]:
    """Declared messages go out; a concluded child tells its parent; a final parent settles its children."""
    follow: list[FollowUp] = []
    if record.sends(rules.REUPLOAD_REQUEST):
        moved = [m for m in record.moved_blocks if m.get("to") == PENDING_REUPLOAD]
        if moved:
            follow += _queue_reuploads(conn, record, moved)
    if record.parent_id and record.settles:
        follow += _child_concluded(conn, record)
    if record.settles:
        follow += _settle_children(conn, record)
    for_each = record.workflow.children.for_each
    if (
        for_each is not None
        and record.to_status != record.from_status
        and for_each.starts_in(record.to_status, created=False)
        and not record.workflow.is_final(record.to_status)
    ):
        follow += start_for_each(conn, record.case_id, record.workflow, actor=record.actor, at=iso(record.at))
    return follow


def _queue_reuploads(conn: sqlite3.Connection, record: Transition, moved: list[Mapping[str, Any]]) -> list[FollowUp]:
    """request_reuploads moved these blocks to pending_reupload: ask the subject (and UBOs) again."""
    case = case_store.get(conn, record.case_id)
    assert case is not None
    at, actor = iso(record.at), record.actor
    docs: list[dict[str, Any]] = []
    kycs: list[dict[str, Any]] = []
    for m in moved:
        b = block_store.block_by_name(conn, case["id"], m["block"])
        if b is None:
            continue
        (kycs if b["kind"] == "kyc" else docs).append(b)
    if docs:
        lines = []
        for b in docs:
            why = block_store.last_block_reason(conn, case["id"], b["name"], "block.reupload")
            lines.append(f"- {b['name']}" + (f": {why}" if why else ""))
        to = case.get("subject_email")
        names = ", ".join(b["name"] for b in docs)
        if to:
            who = case.get("subject_name") or "there"
            queue_email(
                conn,
                case_id=case["id"],
                event_id=record.event_id,
                to=to,
                subject=f"Please re-upload {len(docs)} document{'s' if len(docs) != 1 else ''} "
                f"(case {_cid(case['id'])})",
                text=f"Hello {who},\n\nWe could not accept the following documents for case "
                f"{_cid(case['id'])}:\n" + "\n".join(lines) + "\n\nPlease upload new copies.\n",
                template=rules.REUPLOAD_REQUEST,
                at=at,
                blocks=[b["name"] for b in docs],
            )
            event(
                conn,
                case["id"],
                "message.queued",
                actor=actor,
                at=at,
                summary=f"re-upload request to {to}: {names}",
                template=rules.REUPLOAD_REQUEST,
                to=to,
            )
        else:
            event(
                conn,
                case["id"],
                "message.skipped",
                actor=actor,
                at=at,
                summary=f"no re-upload email: the subject has no email address ({names})",
                template=rules.REUPLOAD_REQUEST,
            )
    follow: list[FollowUp] = []
    for b in kycs:
        follow.append(_new_kyc_flow(conn, case, record.workflow, b, actor=actor, at=at))
    return follow


def _new_kyc_flow(
    conn: sqlite3.Connection, case: Mapping[str, Any], wf: Workflow, b: Mapping[str, Any], *, actor: str, at: str
) -> StartCase:
    """A new KYC flow for a kyc block asked to re-upload: a new child case for the same person."""
    previous = b.get("child_case_id")
    old = case_store.get(conn, previous) if previous else None
    nc = kyc_case(case, wf, b["name"], b["data"], subject_id=old.get("subject_id") if old else None,
                  reupload_of=previous, at=at, workflow=old["workflow"] if old else None)  # fmt: skip

    def link(conn: sqlite3.Connection, child_id: int) -> list[FollowUp]:
        block_store.update_block(
            conn, b["id"], {"child_case_id": child_id, "decided_by": None, "decided_at": None}, at=at
        )
        ev = event(
            conn,
            case["id"],
            "kyc.flow",
            actor=actor,
            at=at,
            summary=f"{b['name']}: new KYC flow {_cid(child_id)} (replaces {_cid(previous)})",
            block=b["name"],
            child=_cid(child_id),
            previous=_cid(previous),
        )
        if _kyc_flow_email(conn, case, child_id, b["name"], event_id=ev, at=at, again=True) is None:
            event(
                conn,
                case["id"],
                "message.skipped",
                actor=actor,
                at=at,
                summary=f"no KYC flow email for {b['name']}: the person has no email address",
                template="kyc_flow",
            )
        return []

    return StartCase(new_case=nc, event_data={"parent": _cid(case["id"]), "block": b["name"]}, then=link)


def _child_concluded(conn: sqlite3.Connection, record: Transition) -> list[FollowUp]:
    """A KYC child case reached a final status: its parent's block goes back for review."""
    b = block_store.block_for_child(conn, record.case_id)
    if b is None or b["case_id"] != record.parent_id:
        return []  # a superseded flow: the block points at a newer child
    at, actor, to_status = iso(record.at), record.actor, record.to_status
    parent = case_store.get(conn, b["case_id"])
    assert parent is not None
    parent_wf = catalog.workflow_of(conn, parent)
    if parent_wf.is_final(parent["status"]):
        # The parent is decided: note the outcome in its history, change nothing.
        event(
            conn,
            b["case_id"],
            "block.kyc_concluded",
            actor=actor,
            at=at,
            summary=f"{b['name']}: KYC case {_cid(record.case_id)} {to_status} (the case is already "
            f"{parent['status']})",
            block=b["name"],
            child=_cid(record.case_id),
            child_status=to_status,
        )
        return []
    waiting = b["status"] in (PENDING_ID_VERIFICATION, PENDING_REUPLOAD)
    changes: dict[str, Any] = {"status": None} if waiting else {}
    mapping = _result_mapping(parent_wf, record.workflow)
    mapped, problem = _child_result(conn, record.case_id, mapping) if mapping else (None, None)
    if mapped:
        changes["data"] = {**(b["data"] or {}), **mapped}
    if changes:
        block_store.update_block(conn, b["id"], changes, at=at)
    event(
        conn,
        b["case_id"],
        "block.kyc_concluded",
        actor=actor,
        at=at,
        summary=f"{b['name']}: KYC case {_cid(record.case_id)} {to_status}; block back for review",
        block=b["name"],
        child=_cid(record.case_id),
        child_status=to_status,
        **{"from": b["status"], "to": None if waiting else b["status"]},
    )
    if mapping:
        keys = ", ".join(sorted(mapped or ())) or "nothing"
        event(
            conn,
            b["case_id"],
            "child.result",
            actor=actor,
            at=at,
            summary=f"{b['name']}: the result of KYC case {_cid(record.case_id)} ({to_status}) "
            + (f"merged into the block: {keys}" if problem is None else f"not merged: {problem}"),
            block=b["name"],
            child=_cid(record.case_id),
            child_status=to_status,
            mapping=mapping,
            mapped=sorted(mapped or ()),
            result=mapped,  # private (store.events.PRIVATE_KEYS): it may hold the person's data
        )
    touch(conn, b["case_id"], at=at)
    return [Advance(case_id=b["case_id"])]


def _settle_children(conn: sqlite3.Connection, record: Transition) -> list[FollowUp]:
    """The case reached a final status: its open children are settled as its workflow says."""
    policy = record.workflow.children
    open_children = [k for k in block_store.children(conn, record.case_id) if not k["final"]]
    if not open_children or policy.on_parent_final != rules.WITHDRAW:
        return []
    follow: list[FollowUp] = []
    at = iso(record.at)
    for k in open_children:
        child = case_store.get(conn, k["id"])
        assert child is not None
        child_wf = catalog.workflow_of(conn, child)
        action = child_wf.action(policy.withdraw_action)
        summary = f"child case {_cid(k['id'])} withdrawn: this case is {record.to_status}"
        if action is None or not action.answers_to(rules.SYSTEM) or child["status"] not in action.sources:
            summary = (
                f"child case {_cid(k['id'])} left {child['status']}: its workflow {child_wf.name} cannot "
                f"'{policy.withdraw_action}' from there"
            )
        else:
            follow.append(
                Fire(
                    case_id=k["id"],
                    action=policy.withdraw_action,
                    reason=f"parent case {_cid(record.case_id)} is {record.to_status}",
                )
            )
        event(conn, record.case_id, "child.settled", actor=record.actor, at=at, summary=summary, child=_cid(k["id"]))
    return follow


# --- children from data (children.for_each) ------------------------------------------------


def start_for_each(conn: sqlite3.Connection, case_id: int, wf: Workflow, *, actor: str, at: str) -> list[FollowUp]:
    """A kyc block and its child case for each element of `for_each.items` that has no block yet.

    Keyed by block name, so entering the trigger status again starts only new elements. Every
    element is checked before anything is written; a bad one refuses the whole change (exit 6),
    naming the element and the field; an unknown child workflow is exit 3.
    """
    fe = wf.children.for_each
    assert fe is not None
    case = case_store.get(conn, case_id)
    assert case is not None
    items = _evaluate(fe.items, case_document(conn, case), "children.for_each.items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise InvalidInput(f"children.for_each.items: '{fe.items}' gives {_kind(items)}, not an array")
    child_workflow = wf.children.for_each_workflow
    assert child_workflow is not None
    existing = {b["name"]: b for b in block_store.blocks(conn, case_id)}
    planned: dict[str, tuple[dict[str, Any], NewCase]] = {}
    kept: list[str] = []
    child_wf = _child_workflow(conn, child_workflow) if items else None
    for index, element in enumerate(items, 1):
        where = f"children.for_each: element {index} of {fe.items} ([{index - 1}])"
        name = _block_name(fe.block, element, index, where)
        b = existing.get(name)
        if b is not None and b["kind"] != "kyc":
            raise InvalidInput(f"{where}: block {name} already exists and is a {b['kind']} block, not a kyc one")
        if b is not None:
            kept.append(name)
            continue
        if name in planned:
            raise InvalidInput(f"{where}: block {name} is already another element's (each needs its own name)")
        assert child_wf is not None
        planned[name] = _element_case(case, child_wf, fe.subject, fe.data, element, where, at=at)
    started = ", ".join(planned) or "none"
    event(
        conn,
        case_id,
        "children.for_each",
        actor=actor,
        at=at,
        summary=f"{fe.items}: {len(items)} element{'s' if len(items) != 1 else ''}; "
        f"child cases on {child_workflow} started for: {started}"
        + (f"; already started: {', '.join(kept)}" if kept else ""),
        items=fe.items,
        workflow=child_workflow,
        started=list(planned),
        kept=kept,
    )
    follow: list[FollowUp] = []
    for name, (data, nc) in planned.items():
        _, start = _kyc_block(conn, case, name, data, nc, actor=actor, at=at)
        follow.append(start)
    return follow


def _child_workflow(conn: sqlite3.Connection, name: str) -> Workflow:
    try:
        return catalog.workflow(conn, name)
    except NotFound as e:
        raise NotFound(
            f"children.for_each: the child workflow '{name}' is not known; add it first with "
            f"`casectl workflows add FILE` ({e.message})"
        ) from None


def _block_name(template: str, element: Any, index: int, where: str) -> str:
    """The element's kyc block name: the template numbered, or the expression's string."""
    if INDEX in template:
        name = template.replace(INDEX, str(index))
    else:
        found = _evaluate(template, element, f"{where}: block")
        if not isinstance(found, str):
            raise InvalidInput(f"{where}: block: '{template}' gives {_kind(found)}, not a block name")
        name = found
    problem = block_name_problem(name)
    if problem:
        raise InvalidInput(f"{where}: block name '{name}': {problem}")
    return name


# A for_each subject field, and the NewCase attribute it fills (rules.SUBJECT_FIELDS).
_SUBJECT_ATTRIBUTES = {
    "name": "subject_name",
    "email": "subject_email",
    "dob": "subject_dob",
    "country": "country",
    "ref": "subject_ref",
}


def _element_case(
    parent: Mapping[str, Any],
    child_wf: Workflow,
    subject: tuple[tuple[str, str], ...],
    data_expression: str,
    element: Any,
    where: str,
    *,
    at: str,
) -> tuple[dict[str, Any], NewCase]:
    """The block data and the child case one element gives, or a refusal naming what is wrong."""
    data = _evaluate(data_expression, element, f"{where}: data")
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: data: '{data_expression}' gives {_kind(data)}, not an object")
    nc = NewCase(
        workflow=child_wf.name,
        parent_id=parent["id"],
        origin=f"case:{_cid(parent['id'])}",
        data=data,
        entity_type="person",
    )
    for field_name, expression in subject:
        value = _evaluate(expression, element, f"{where}: subject {field_name}")
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: subject {field_name}: '{expression}' gives {_kind(value)}, not a string")
        setattr(nc, _SUBJECT_ATTRIBUTES[field_name], value.upper() if field_name == "country" else value)
    if not (nc.subject_name or nc.subject_email or nc.subject_ref):
        asked = ", ".join(f"{k}: '{v}'" for k, v in subject if k in ("name", "email", "ref")) or "none asked for"
        raise InvalidInput(f"{where}: no subject: the element gives no name, email or ref ({asked})")
    errors = validate_new_case(nc, child_wf, now=parse_time(at))
    if errors:
        raise InvalidInput(f"{where}: {errors[0]}", details=errors[1:] or None)
    return data, nc


def _result_mapping(parent_wf: Workflow, child_wf: Workflow) -> str | None:
    """The for_each result mapping for a child on `child_wf` (it is written against that workflow's cases)."""
    fe = parent_wf.children.for_each
    if fe is None or fe.result is None or child_wf.name != parent_wf.children.for_each_workflow:
        return None
    return fe.result


def _child_result(conn: sqlite3.Connection, child_id: int, mapping: str) -> tuple[dict[str, Any] | None, str | None]:
    """(what the mapping gives on the concluded child, why nothing is merged). The child has concluded
    already: a mapping that fails on its data is noted on the parent, it does not undo the decision."""
    child = case_store.get(conn, child_id)
    assert child is not None
    # The case document has no decision (conditions read the status); a concluded child's result is mostly it.
    doc = {**case_document(conn, child), "decision": child.get("decision")}
    try:
        found = _evaluate(mapping, doc, "children.for_each.result")
    except InvalidInput as e:
        return None, e.message
    if found is None:
        return None, f"'{mapping}' gives null"
    if not isinstance(found, dict):
        return None, f"'{mapping}' gives {_kind(found)}, not an object"
    return found, None


def _evaluate(expression: str, doc: Any, where: str) -> Any:
    """A JMESPath expression's result on `doc`; one that fails to run is bad input naming `where`."""
    import jmespath  # only workflows with a for_each pay for it

    try:
        return jmespath.search(expression, doc)
    except jmespath.exceptions.JMESPathError as e:
        raise InvalidInput(f"{where}: '{expression}' fails: {str(e).splitlines()[0]}") from None


def _kind(value: Any) -> str:
    """A JSON value's type, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"


def case_document(conn: sqlite3.Connection, case: Mapping[str, Any]) -> dict[str, Any]:
    """The case as expressions see it (rules/conditions.py): the same document as
    `lifecycle.case_document`, built here because a follower does not import the kernel
    (tests/test_for_each.py holds the two equal)."""
    row = case_store.fetch(conn, case["id"])
    return {
        "id": _cid(row["id"]),
        "ref": row.get("ref"),
        "workflow": row["workflow"],
        "status": row["status"],
        "priority": row.get("priority"),
        "assignee": row.get("assignee"),
        "team": row.get("team"),
        "data": row.get("data") or {},
        "registry_data": row.get("registry_data") or {},
        "tags": list(row.get("tags") or ()),
        "subject": {k: row.get(f"subject_{k}") for k in ("ref", "name", "email", "dob", "country", "entity_type")},
        "blocks": [
            {"name": b["name"], "kind": b["kind"], "status": b["status"], "data": b.get("data") or {}}
            for b in block_store.blocks(conn, case["id"])
        ],
        "activities": [
            {
                "id": ids.fmt("activity", a["id"]),
                "type": a["type"],
                "state": a["state"],
                "decision": a.get("decision"),
                "result": a.get("result") or {},
            }
            for a in activity_store.activities(conn, case["id"])
        ],
        "children": [
            {
                "id": _cid(c["id"]),
                "workflow": c["workflow"],
                "status": c["status"],
                "final": c["final"],
                "decision": c.get("decision"),
                "block": c.get("block"),
            }
            for c in block_store.children(conn, case["id"])
        ],
    }
