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

import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from .. import ids, rules
from ..errors import InvalidInput
from ..rules import Workflow
from ..rules import blocks as block_rules
from ..rules.model import PENDING_ID_VERIFICATION, PENDING_REUPLOAD
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
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"block name '{name}': use letters, digits, _ . - (at most 64, starting with a letter or digit)"
        )
    if name in block_rules.RESERVED_NAMES:
        raise InvalidInput(f"block name '{name}' is reserved (data and registry are the case's own data)")
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
) -> NewCase:
    """A child case on the workflow's child workflow: a KYC flow for one person (a UBO)."""
    nc = NewCase(
        workflow=wf.children.workflow,
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
    block_id = block_store.insert_block(
        conn,
        case_id=case["id"],
        name=name,
        kind=kind,
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
            summary=f"{kind} block {name} added with KYC case {_cid(child_id)}",
            block=name,
            kind=kind,
            child=_cid(child_id),
        )
        _kyc_flow_email(conn, case, child_id, name, event_id=event_id, at=at, again=False)
        return []

    start = StartCase(new_case=nc, event_data={"parent": _cid(case["id"]), "block": name}, then=link)
    return block_id, [start]


# --- follower: creation ------------------------------------------------------------------


def on_created(conn: sqlite3.Connection, record: Created) -> list[FollowUp]:
    """Create the case's initial blocks and the activities its workflow requires."""
    wf, nc = record.workflow, record.new_case
    if not (nc.blocks or wf.requirements):
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
                  reupload_of=previous, at=at)  # fmt: skip

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
    if catalog.workflow_of(conn, parent).is_final(parent["status"]):
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
    if waiting:
        block_store.update_block(conn, b["id"], {"status": None}, at=at)
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
