"""What a case holds: blocks, documents, KYC child cases and activities.

Blocks follow seed 000 (five kinds, edit rights, approve / ask to re-upload,
the re-upload flow); KYC blocks are child cases on their own workflow whose
conclusion is a system event on the parent. Activities follow seed 002
(created from the workflow's requirements with a snapshot of their config,
states, results, per-activity decisions). Every change appends an event.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import ids, rules
from ..errors import InvalidInput, NotAllowed, NotFound, UsageError
from ..nested import deep_merge, set_path
from ..rules import Verdict, Workflow
from ..rules import blocks as block_rules
from ..rules.model import APPROVED, PENDING_ID_VERIFICATION, PENDING_REUPLOAD
from ..store import cases as case_store
from ..store import content as content_store
from ..store import events as event_store
from ..store import outbox as outbox_store
from ..store import write
from ..timeutil import iso
from . import cases as case_service

KYC_WORKFLOW = "kyc"
INITIAL_ACTIVITY_STATE = "pending"
# System events that content changes may make possible; fired as soon as their guards hold.
AUTO_EVENTS = ("reupload_received", "kyc_completed", "processes_concluded", "activities_completed")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# --- small helpers ------------------------------------------------------------


def _cid(n: int | None) -> str | None:
    return ids.fmt("case", n)


def _refuse(what: str, case: dict[str, Any], verdict: Verdict) -> NotAllowed:
    return NotAllowed(f"cannot {what} on case {_cid(case['id'])}: {verdict.reason}")


def _open_case(conn: sqlite3.Connection, id_or_ref: str, what: str) -> tuple[dict[str, Any], Workflow]:
    case = case_service.load(conn, id_or_ref)
    wf = case_service.workflow_of(conn, case)
    verdict = block_rules.case_open(wf, case["status"], what)
    if not verdict.allowed:
        raise _refuse(what, case, verdict)
    return case, wf


def _touch(
    conn: sqlite3.Connection, case_id: int, *, at: str, editor: str | None = None, changes: dict[str, Any] | None = None
) -> None:
    """Bump the case's version (and, for data edits, its last editor: the four-eyes rule reads it)."""
    case = case_store.get(conn, case_id)
    assert case is not None
    more = dict(changes or {})
    if editor is not None:
        more["last_editor"] = editor
    case_store.update(conn, case_id, case["version"], more, at=at)


def _event(
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


def _fmt_size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def parse_value(text: str) -> Any:
    """KEY=VALUE values: JSON scalars, arrays and objects as such; anything else a string."""
    if text and (text[0] in '{["' or text in ("true", "false", "null") or re.fullmatch(r"-?\d+(\.\d+)?", text)):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def parse_assignments(pairs: Iterable[str], what: str) -> dict[str, Any]:
    """['a.b=1', 'c=x'] -> {'a': {'b': 1}, 'c': 'x'} (dotted keys nest)."""
    out: dict[str, Any] = {}
    pairs = list(pairs)
    if not pairs:
        raise UsageError(f"{what} needs at least one KEY=VALUE")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        parts = key.split(".")
        if not sep or not key or any(not p.strip() for p in parts):
            raise InvalidInput(f"{what}: '{pair}' is not KEY=VALUE (dotted keys like address.city nest)")
        set_path(out, parts, parse_value(value))
    return out


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _assign_summary(changes: dict[str, Any]) -> str:
    items = [f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}" for k, v in _flat(changes)]
    text = ", ".join(items)
    return text if len(text) <= 120 else text[:117] + "..."


# --- blocks: reading ------------------------------------------------------------


def _synthetic_blocks(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's own data and registry data, shown and edited as blocks named data and registry."""
    return [
        {
            "id": None,
            "name": block_rules.DATA_BLOCK,
            "kind": "user_data",
            "status": None,
            "data": case["data"],
            "child_case_id": None,
            "attachment_count": 0,
            "decided_by": None,
            "decided_at": None,
        },
        {
            "id": None,
            "name": block_rules.REGISTRY_BLOCK,
            "kind": "registry_data",
            "status": None,
            "data": case["registry_data"],
            "child_case_id": None,
            "attachment_count": 0,
            "decided_by": None,
            "decided_at": None,
        },
    ]


def _find_block(conn: sqlite3.Connection, case: dict[str, Any], name: str) -> dict[str, Any]:
    for b in _synthetic_blocks(case):
        if b["name"] == name:
            return b
    found = content_store.block_by_name(conn, case["id"], name)
    if found is None:
        n = ids.parse("block", name) if name.upper().startswith("B") else None
        found = content_store.block_by_id(conn, case["id"], n) if n else None
    if found is None:
        names = [block_rules.DATA_BLOCK, block_rules.REGISTRY_BLOCK] + [
            b["name"] for b in content_store.blocks(conn, case["id"])
        ]
        raise NotFound(
            f"case {_cid(case['id'])} has no block '{name}' (blocks: {', '.join(names)}); "
            f"add one with `casectl block {_cid(case['id'])} add KIND NAME`"
        )
    return found


def _fields_summary(data: dict[str, Any]) -> str:
    keys = list(data)
    if not keys:
        return "empty"
    shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
    return f"{len(keys)} field{'s' if len(keys) != 1 else ''}: {shown}"


def block_row(conn: sqlite3.Connection, b: dict[str, Any]) -> dict[str, Any]:
    """A block as `blocks` and `show` print it."""
    kind = rules.BLOCK_KINDS_BY_NAME[b["kind"]]
    doc = content_store.latest_attachment(conn, b["id"]) if b.get("id") else None
    if b["kind"] == "kyc":
        who = b.get("child_subject_name") or b.get("child_subject_email") or b["data"].get("name") or ""
        summary = f"{_cid(b.get('child_case_id'))} {who}: {b.get('child_status')}".replace("  ", " ")
    elif doc is not None:
        summary = f"{doc['filename']}, {doc['media_type'] or 'unknown type'}, {_fmt_size(doc['size'])}"
        if b.get("attachment_count", 0) > 1:
            summary += f" ({b['attachment_count']} versions)"
    elif b["kind"] == "document":
        summary = "no document yet"
    else:
        summary = _fields_summary(b["data"])
    status = b["status"]
    return {
        "id": ids.fmt("block", b.get("id")),
        "name": b["name"],
        "kind": b["kind"],
        "status": status,
        "status_label": status if status else ("awaiting review" if kind.has_status else "-"),
        "summary": summary,
        "editable": kind.agent_editable,
        "actions": list(kind.actions),
        "child": _cid(b.get("child_case_id")),
        "child_status": b.get("child_status"),
        "document": None
        if doc is None
        else {
            "filename": doc["filename"],
            "media_type": doc["media_type"],
            "size": doc["size"],
            "sha256": doc["sha256"],
            "attached_at": doc["created_at"],
            "attached_by": doc["created_by"],
        },
        "attachments": b.get("attachment_count", 0),
        "decided_by": b.get("decided_by"),
        "decided_at": b.get("decided_at"),
        "data": b["data"],
    }


def list_blocks(conn: sqlite3.Connection, id_or_ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = case_service.load(conn, id_or_ref)
    stored = content_store.blocks(conn, case["id"])
    return case, [block_row(conn, b) for b in _synthetic_blocks(case) + stored]


# --- blocks: creating -----------------------------------------------------------


def _check_new_block(wf: Workflow, kind: str, name: str, existing: set[str]) -> None:
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


def _queue_email(
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


def _start_kyc_flow(
    conn: sqlite3.Connection,
    parent: dict[str, Any],
    block_name: str,
    data: dict[str, Any],
    *,
    actor: str,
    now: datetime,
    subject_id: int | None = None,
    reupload_of: int | None = None,
) -> int:
    """A child case on the kyc workflow: a new KYC flow for one person (a UBO)."""
    nc = case_service.NewCase(
        workflow=KYC_WORKFLOW,
        parent_id=parent["id"],
        origin=f"case:{_cid(parent['id'])}",
        data={**data, **({"reupload_of": _cid(reupload_of)} if reupload_of else {})},
    )
    if subject_id is None:
        nc.subject_name = data.get("name") if isinstance(data.get("name"), str) else None
        nc.subject_email = data.get("email") if isinstance(data.get("email"), str) else None
        nc.subject_dob = data.get("dob") if isinstance(data.get("dob"), str) else None
        country = data.get("country")
        nc.country = country.upper() if isinstance(country, str) else None
        nc.entity_type = "person"
    try:
        child_id = case_service.insert_case(
            conn, nc, actor=actor, now=now, event_data={"parent": _cid(parent["id"]), "block": block_name}
        )
    except InvalidInput as e:
        raise InvalidInput(f"kyc block {block_name}: {e.message}", details=e.details) from None
    if subject_id is not None:
        child = case_store.get(conn, child_id)
        case_store.update(conn, child_id, child["version"], {"subject_id": subject_id}, at=iso(now))
    return child_id


def _kyc_flow_email(
    conn: sqlite3.Connection,
    parent: dict[str, Any],
    child_id: int,
    block_name: str,
    *,
    event_id: int,
    at: str,
    again: bool,
) -> str | None:
    child = case_store.get(conn, child_id)
    to = child.get("subject_email") if child else None
    if not to:
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
    _queue_email(
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
    return to


def _create_block(
    conn: sqlite3.Connection,
    case: dict[str, Any],
    wf: Workflow,
    kind: str,
    name: str,
    data: dict[str, Any],
    *,
    actor: str,
    now: datetime,
) -> int:
    at = iso(now)
    existing = {b["name"] for b in content_store.blocks(conn, case["id"])}
    _check_new_block(wf, kind, name, existing)
    child_id = None
    status = None
    if kind == "kyc":
        child_id = _start_kyc_flow(conn, case, name, data, actor=actor, now=now)
        status = PENDING_ID_VERIFICATION
    block_id = content_store.insert_block(
        conn, case_id=case["id"], name=name, kind=kind, data=data, status=status, child_case_id=child_id, at=at
    )
    summary = f"{kind} block {name} added" + (f" with KYC case {_cid(child_id)}" if child_id else "")
    event_id = _event(
        conn, case["id"], "block.add", actor=actor, at=at, summary=summary, block=name, kind=kind, child=_cid(child_id)
    )
    if child_id:
        _kyc_flow_email(conn, case, child_id, name, event_id=event_id, at=at, again=False)
    return block_id


def add_block(
    conn: sqlite3.Connection, id_or_ref: str, kind: str, name: str, data: dict[str, Any], *, actor: str, now: datetime
) -> dict[str, Any]:
    with write(conn):
        case, wf = _open_case(conn, id_or_ref, f"add block {name}")
        block_id = _create_block(conn, case, wf, kind, name, data, actor=actor, now=now)
        _touch(conn, case["id"], at=iso(now), editor=actor)
        _advance(conn, case["id"], actor=actor, now=now)
        return block_row(conn, content_store.block_by_id(conn, case["id"], block_id))


# --- blocks: changing -----------------------------------------------------------


def _checked_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, action: str, what: str
) -> tuple[dict[str, Any], Workflow, dict[str, Any], Verdict]:
    """The open case, its block `name`, and the rules' verdict on `action`; refused with exit 4 if not allowed."""
    case, wf = _open_case(conn, id_or_ref, what)
    b = _find_block(conn, case, name)
    verdict = block_rules.block_check(
        wf,
        b["kind"],
        b["status"],
        action,
        child=_cid(b.get("child_case_id")),
        child_status=b.get("child_status"),
        child_final=b.get("child_final"),
        child_decision=b.get("child_decision"),
    )
    if not verdict.allowed:
        raise _refuse(what, case, verdict)
    return case, wf, b, verdict


def set_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, pairs: list[str], *, actor: str, now: datetime
) -> dict[str, Any]:
    """Edit a writable block's data (KEY=VALUE, dotted keys nest)."""
    changes = parse_assignments(pairs, f"block {name} set")
    with write(conn):
        case, wf, b, _ = _checked_block(conn, id_or_ref, name, "set", f"edit block {name}")
        at = iso(now)
        merged = deep_merge(b["data"], changes)
        if b["id"] is None:  # the case's own data
            _touch(conn, case["id"], at=at, editor=actor, changes={"data": merged})
        else:
            content_store.update_block(conn, b["id"], {"data": merged}, at=at)
            _touch(conn, case["id"], at=at, editor=actor)
        _event(
            conn,
            case["id"],
            "block.set",
            actor=actor,
            at=at,
            summary=f"{name}: {_assign_summary(changes)}",
            block=name,
            changes=changes,
        )
        case = case_store.get(conn, case["id"])
        return block_row(conn, _find_block(conn, case, name))


def _block_decision(
    conn: sqlite3.Connection, id_or_ref: str, name: str, action: str, reason: str | None, *, actor: str, now: datetime
) -> dict[str, Any]:
    with write(conn):
        case, wf, b, verdict = _checked_block(conn, id_or_ref, name, action, f"{action} block {name}")
        at = iso(now)
        changes: dict[str, Any] = {"status": verdict.target}
        if action == "approve":
            changes.update(decided_by=actor, decided_at=at)
        content_store.update_block(conn, b["id"], changes, at=at)
        _touch(conn, case["id"], at=at)
        if action == "approve":
            summary = f"{name} approved"
        else:
            summary = f"{name} marked {verdict.target}"
        _event(
            conn,
            case["id"],
            f"block.{action}",
            actor=actor,
            at=at,
            summary=summary,
            reason=reason,
            block=name,
            kind=b["kind"],
            **{"from": b["status"], "to": verdict.target},
        )
        case = case_store.get(conn, case["id"])
        return block_row(conn, _find_block(conn, case, name))


def approve_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, *, reason: str | None, actor: str, now: datetime
) -> dict[str, Any]:
    """Seed 000: the decision is saved on the case even while the case itself is undecided."""
    return _block_decision(conn, id_or_ref, name, "approve", reason, actor=actor, now=now)


def reupload_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, *, reason: str, actor: str, now: datetime
) -> dict[str, Any]:
    """Mark a block reupload_needed; `act ID request_reuploads` then asks for all marked ones."""
    if not (reason and reason.strip()):
        raise InvalidInput("reupload needs a reason: add --reason TEXT (it goes into the message to the subject)")
    return _block_decision(conn, id_or_ref, name, "reupload", reason, actor=actor, now=now)


# --- documents ------------------------------------------------------------------


@dataclass
class FileContent:
    filename: str
    content: bytes
    sha256: str
    media_type: str


def read_file(path: str | Path) -> FileContent:
    """Read a document before any transaction opens: a bad file writes nothing."""
    p = Path(path)
    try:
        content = p.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{p}: is a directory, not a file") from None
    except PermissionError:
        raise InvalidInput(f"{p}: not readable (permission denied)") from None
    except OSError as e:
        raise InvalidInput(f"{p}: cannot read it ({e.strerror or e})") from None
    media_type = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
    return FileContent(p.name, content, hashlib.sha256(content).hexdigest(), media_type)


def _store_document(
    conn: sqlite3.Connection, case: dict[str, Any], b: dict[str, Any], f: FileContent, *, actor: str, at: str
) -> dict[str, Any]:
    new = content_store.put_document(conn, sha256=f.sha256, content=f.content, media_type=f.media_type, at=at)
    attachment_id = content_store.insert_attachment(
        conn,
        case_id=case["id"],
        block_id=b["id"],
        sha256=f.sha256,
        filename=f.filename,
        media_type=f.media_type,
        size=len(f.content),
        at=at,
        actor=actor,
    )
    return {
        "attachment": attachment_id,
        "filename": f.filename,
        "media_type": f.media_type,
        "size": len(f.content),
        "sha256": f.sha256,
        "stored": "new" if new else "already stored",
    }


def attach(
    conn: sqlite3.Connection, id_or_ref: str, name: str, path: str | Path, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Attach a file to a block; the bytes are stored once under their sha256."""
    f = read_file(path)
    with write(conn):
        case, wf = _open_case(conn, id_or_ref, f"attach to block {name}")
        b = _find_block(conn, case, name)
        if b["id"] is None:
            raise NotAllowed(
                f"cannot attach to '{name}' on case {_cid(case['id'])}: it is the case's own data; "
                f"attach files to a document block (`casectl block {_cid(case['id'])} add document NAME`)"
            )
        verdict = block_rules.block_check(wf, b["kind"], b["status"], "attach")
        if not verdict.allowed:
            raise _refuse(f"attach to block {name}", case, verdict)
        at = iso(now)
        info = _store_document(conn, case, b, f, actor=actor, at=at)
        summary = f"{name}: {f.filename} ({f.media_type}, {_fmt_size(len(f.content))}, sha256 {f.sha256[:12]})"
        if b["status"] == APPROVED:
            # A changed document needs a new review.
            content_store.update_block(conn, b["id"], {"status": None, "decided_by": None, "decided_at": None}, at=at)
            summary += "; approval withdrawn for the new document"
        _event(conn, case["id"], "document.attached", actor=actor, at=at, summary=summary, block=name, **info)
        _touch(conn, case["id"], at=at, editor=actor)
        return {"case": _cid(case["id"]), "block": name, **info}


def received(
    conn: sqlite3.Connection, id_or_ref: str, name: str, path: str | Path, *, actor: str, now: datetime
) -> dict[str, Any]:
    """The subject's re-upload arrived: store it and put the block back for review."""
    f = read_file(path)
    with write(conn):
        case, wf, b, _ = _checked_block(conn, id_or_ref, name, "received", f"receive a re-upload for block {name}")
        at = iso(now)
        info = _store_document(conn, case, b, f, actor=actor, at=at)
        content_store.update_block(conn, b["id"], {"status": None, "decided_by": None, "decided_at": None}, at=at)
        _event(
            conn,
            case["id"],
            "block.received",
            actor=actor,
            at=at,
            summary=f"{name}: re-upload received, {f.filename} ({_fmt_size(len(f.content))}); back for review",
            block=name,
            **{"from": b["status"], "to": None},
            **info,
        )
        _touch(conn, case["id"], at=at)
        fired = _advance(conn, case["id"], actor=actor, now=now)
        case = case_store.get(conn, case["id"])
        return {"case": _cid(case["id"]), "block": name, **info, "case_status": case["status"], "events": fired}


def attachments(conn: sqlite3.Connection, id_or_ref: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = case_service.load(conn, id_or_ref)
    b = _find_block(conn, case, name)
    rows = content_store.attachments(conn, b["id"]) if b["id"] else []
    return case, rows


def document(conn: sqlite3.Connection, id_or_ref: str, name: str) -> tuple[dict[str, Any], bytes]:
    """The block's current document and its bytes (checked against their sha256)."""
    case = case_service.load(conn, id_or_ref)
    b = _find_block(conn, case, name)
    att = content_store.latest_attachment(conn, b["id"]) if b["id"] else None
    if att is None:
        raise NotFound(
            f"block {name} of case {_cid(case['id'])} has no document; attach one with "
            f"`casectl attach {_cid(case['id'])} {name} FILE`"
        )
    content = content_store.document_content(conn, att["sha256"])
    if content is None or hashlib.sha256(content).hexdigest() != att["sha256"]:
        raise InvalidInput(f"the stored document {att['sha256'][:12]} is missing or damaged; run `casectl db check`")
    return att, content


# --- the re-upload flow and KYC propagation (hooks) -------------------------------


def _queue_reuploads(
    conn: sqlite3.Connection,
    case: dict[str, Any],
    moved: list[dict[str, Any]],
    *,
    event_id: int,
    actor: str,
    now: datetime,
) -> None:
    """request_reuploads moved these blocks to pending_reupload: ask the subject (and UBOs) again."""
    at = iso(now)
    docs, kycs = [], []
    for m in moved:
        b = content_store.block_by_name(conn, case["id"], m["block"])
        if b is None:
            continue
        (kycs if b["kind"] == "kyc" else docs).append(b)
    if docs:
        lines = []
        for b in docs:
            why = content_store.last_block_reason(conn, case["id"], b["name"], "block.reupload")
            lines.append(f"- {b['name']}" + (f": {why}" if why else ""))
        to = case.get("subject_email")
        names = ", ".join(b["name"] for b in docs)
        if to:
            who = case.get("subject_name") or "there"
            _queue_email(
                conn,
                case_id=case["id"],
                event_id=event_id,
                to=to,
                subject=f"Please re-upload {len(docs)} document{'s' if len(docs) != 1 else ''} "
                f"(case {_cid(case['id'])})",
                text=f"Hello {who},\n\nWe could not accept the following documents for case "
                f"{_cid(case['id'])}:\n" + "\n".join(lines) + "\n\nPlease upload new copies.\n",
                template="reupload_request",
                at=at,
                blocks=[b["name"] for b in docs],
            )
            _event(
                conn,
                case["id"],
                "message.queued",
                actor=actor,
                at=at,
                summary=f"re-upload request to {to}: {names}",
                template="reupload_request",
                to=to,
            )
        else:
            _event(
                conn,
                case["id"],
                "message.skipped",
                actor=actor,
                at=at,
                summary=f"no re-upload email: the subject has no email address ({names})",
                template="reupload_request",
            )
    for b in kycs:
        old = case_store.get(conn, b["child_case_id"]) if b.get("child_case_id") else None
        child_id = _start_kyc_flow(
            conn,
            case,
            b["name"],
            b["data"],
            actor=actor,
            now=now,
            subject_id=old.get("subject_id") if old else None,
            reupload_of=b.get("child_case_id"),
        )
        content_store.update_block(
            conn, b["id"], {"child_case_id": child_id, "decided_by": None, "decided_at": None}, at=at
        )
        ev = _event(
            conn,
            case["id"],
            "kyc.flow",
            actor=actor,
            at=at,
            summary=f"{b['name']}: new KYC flow {_cid(child_id)} (replaces {_cid(b.get('child_case_id'))})",
            block=b["name"],
            child=_cid(child_id),
            previous=_cid(b.get("child_case_id")),
        )
        to = _kyc_flow_email(conn, case, child_id, b["name"], event_id=ev, at=at, again=True)
        if to is None:
            _event(
                conn,
                case["id"],
                "message.skipped",
                actor=actor,
                at=at,
                summary=f"no KYC flow email for {b['name']}: the person has no email address",
                template="kyc_flow",
            )


def _child_concluded(
    conn: sqlite3.Connection, child: dict[str, Any], to_status: str, *, actor: str, now: datetime
) -> None:
    """A KYC child case reached a final status: a system event on its parent."""
    b = content_store.block_for_child(conn, child["id"])
    if b is None or b["case_id"] != child["parent_id"]:
        return  # a superseded flow: the block points at a newer child
    at = iso(now)
    parent = case_store.get(conn, b["case_id"])
    if case_service.workflow_of(conn, parent).is_final(parent["status"]):
        # The parent is decided: note the outcome in its history, change nothing.
        _event(
            conn,
            b["case_id"],
            "block.kyc_concluded",
            actor=actor,
            at=at,
            summary=f"{b['name']}: KYC case {_cid(child['id'])} {to_status} (the case is already {parent['status']})",
            block=b["name"],
            child=_cid(child["id"]),
            child_status=to_status,
        )
        return
    waiting = b["status"] in (PENDING_ID_VERIFICATION, PENDING_REUPLOAD)
    if waiting:
        content_store.update_block(conn, b["id"], {"status": None}, at=at)
    _event(
        conn,
        b["case_id"],
        "block.kyc_concluded",
        actor=actor,
        at=at,
        summary=f"{b['name']}: KYC case {_cid(child['id'])} {to_status}; block back for review",
        block=b["name"],
        child=_cid(child["id"]),
        child_status=to_status,
        **{"from": b["status"], "to": None if waiting else b["status"]},
    )
    _touch(conn, b["case_id"], at=at)
    _advance(conn, b["case_id"], actor=actor, now=now)


def _advance(conn: sqlite3.Connection, case_id: int, *, actor: str, now: datetime) -> list[str]:
    """Fire the system events content changes made possible (e.g. the last re-upload arrived)."""
    fired: list[str] = []
    for _ in range(len(AUTO_EVENTS)):
        case = case_store.get(conn, case_id)
        wf = case_service.workflow_of(conn, case)
        if wf.is_final(case["status"]):
            break
        state = case_service.state_of(conn, case)
        for name in AUTO_EVENTS:
            spec = wf.action(name)
            if spec is None or spec.trigger != rules.SYSTEM or case["status"] not in spec.sources:
                continue
            verdict = rules.check(wf, state, name, rules.SYSTEM)
            if verdict.allowed:
                case_service.transition(
                    conn,
                    case,
                    wf,
                    spec.name,
                    verdict.target,
                    actor=actor,
                    now=now,
                    kind="system",
                    decision=spec.decision,
                    block_moves=spec.block_moves,
                    messages=spec.messages,
                    data={"summary": "automatic"},
                )
                fired.append(spec.name)
                break
        else:
            break
    return fired


def creates_on_create(wf: Workflow, nc: Any) -> bool:
    """Whether on_create has anything to make for this new case (initial blocks, required activities)."""
    return bool(getattr(nc, "blocks", None) or wf.requirements)


def on_create(conn: sqlite3.Connection, *, case_id: int, wf: Workflow, nc: Any, actor: str, now: datetime) -> None:
    """Create the case's initial blocks and the activities its workflow requires."""
    if not creates_on_create(wf, nc):
        return
    blocks = list(getattr(nc, "blocks", None) or [])
    requirements = wf.requirements
    case = case_store.get(conn, case_id)
    at = iso(now)
    for spec in blocks:
        _create_block(conn, case, wf, spec["kind"], spec["name"], dict(spec.get("data") or {}), actor=actor, now=now)
    for req in requirements:
        snapshot = {
            "type": req.type,
            "label": req.label or None,
            "team": req.team,
            "config": dict(req.config),
            "workflow": wf.name,
            "workflow_version": wf.version,
        }
        aid = content_store.insert_activity(
            conn,
            case_id=case_id,
            type=req.type,
            label=req.label or None,
            state=INITIAL_ACTIVITY_STATE,
            assignee=None,
            team=req.team,
            requirement={k: v for k, v in snapshot.items() if v is not None},
            at=at,
            actor=actor,
        )
        _event(
            conn,
            case_id,
            "activity.add",
            actor=actor,
            at=at,
            summary=f"{ids.fmt('activity', aid)} {req.type} required by {wf.name} v{wf.version}"
            + (f" (team {req.team})" if req.team else ""),
            activity=ids.fmt("activity", aid),
            type=req.type,
        )


def on_create_batch(
    conn: sqlite3.Connection, cases: Iterable[tuple[int, Workflow, Any]], *, actor: str, now: datetime
) -> None:
    """on_create for many new cases (case_id, workflow, new case) in order (`casectl import`)."""
    for case_id, wf, nc in cases:
        if creates_on_create(wf, nc):
            on_create(conn, case_id=case_id, wf=wf, nc=nc, actor=actor, now=now)


def on_transition(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    wf: Workflow,
    from_status: str,
    to_status: str,
    actor: str,
    now: datetime,
    event_id: int,
    messages: tuple[str, ...] = (),
    moved_blocks: list[dict] = (),
) -> None:
    """A child case reaching a final status is a system event on its parent; re-upload requests go out."""
    case = case_store.get(conn, case_id)
    if case is None:
        return
    if "reupload_request" in messages:
        moved = [m for m in moved_blocks if m.get("to") == PENDING_REUPLOAD]
        if moved:
            _queue_reuploads(conn, case, moved, event_id=event_id, actor=actor, now=now)
    if case.get("parent_id") and wf.is_final(to_status) and not wf.is_final(from_status):
        _child_concluded(conn, case, to_status, actor=actor, now=now)


# --- activities -----------------------------------------------------------------


def activity_row(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ids.fmt("activity", a["id"]),
        "case": _cid(a["case_id"]),
        "case_status": a.get("case_status"),
        "workflow": a.get("workflow"),
        "subject_name": a.get("subject_name"),
        "type": a["type"],
        "label": a.get("label"),
        "state": a["state"],
        "assignee": a.get("assignee"),
        "team": a.get("team"),
        "result": a.get("result") or {},
        "decision": a.get("decision"),
        "decided_by": a.get("decided_by"),
        "decided_at": a.get("decided_at"),
        "requirement": a.get("requirement") or {},
        "created_at": a.get("created_at"),
        "created_by": a.get("created_by"),
        "updated_at": a.get("updated_at"),
    }


def list_activities(conn: sqlite3.Connection, id_or_ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = case_service.load(conn, id_or_ref)
    return case, [activity_row(a) for a in content_store.activities(conn, case["id"])]


def select_activities(
    conn: sqlite3.Connection,
    *,
    states: list[str] = (),
    types: list[str] = (),
    teams: list[str] = (),
    assignees: list[str] = (),
    decisions: list[str] = (),
    workflow: str | None = None,
    undecided: bool = False,
    limit: int | None = None,
) -> Iterable[dict[str, Any]]:
    """Activities across cases (seed 002's activity results page)."""
    unknown = [s for s in states if s not in rules.ACTIVITY_STATES]
    if unknown:
        raise InvalidInput(
            f"--state: unknown activity state '{unknown[0]}' (states: {', '.join(rules.ACTIVITY_STATES)})"
        )
    filters = {
        "state": list(states),
        "type": list(types),
        "team": list(teams),
        "assignee": list(assignees),
        "decision": list(decisions),
        "workflow": workflow,
    }
    return (
        activity_row(a)
        for a in content_store.select_activities(conn, filters=filters, undecided=undecided, limit=limit)
    )


def _find_activity(conn: sqlite3.Connection, case: dict[str, Any], ref: str) -> dict[str, Any]:
    rows = content_store.activities(conn, case["id"])
    n = ids.parse("activity", ref)
    if n is not None:
        for a in rows:
            if a["id"] == n:
                return a
    matches = [a for a in rows if a["type"] == ref]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(
            f"case {_cid(case['id'])} has {len(matches)} '{ref}' activities "
            f"({', '.join(ids.fmt('activity', a['id']) for a in matches)}); name one by its id"
        )
    listed = ", ".join(f"{ids.fmt('activity', a['id'])} {a['type']}" for a in rows) or "none"
    raise NotFound(f"case {_cid(case['id'])} has no activity '{ref}' (activities: {listed})")


def _activity_name(a: dict[str, Any]) -> str:
    return f"{ids.fmt('activity', a['id'])} {a['type']}"


def add_activity(
    conn: sqlite3.Connection,
    id_or_ref: str,
    type_: str,
    *,
    label: str | None = None,
    assignee: str | None = None,
    team: str | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """An activity added by an agent (and perhaps handed to another team)."""
    if not _TYPE.match(type_ or ""):
        raise InvalidInput(f"activity type '{type_}': use lower-case letters, digits and _ (e.g. dbs_check)")
    with write(conn):
        case, wf = _open_case(conn, id_or_ref, f"add activity {type_}")
        at = iso(now)
        requirement = {"type": type_, "added_by": actor}
        aid = content_store.insert_activity(
            conn,
            case_id=case["id"],
            type=type_,
            label=label,
            state=INITIAL_ACTIVITY_STATE,
            assignee=assignee,
            team=team,
            requirement=requirement,
            at=at,
            actor=actor,
        )
        to = f" for {assignee}" if assignee else (f" for team {team}" if team else "")
        _event(
            conn,
            case["id"],
            "activity.add",
            actor=actor,
            at=at,
            summary=f"{ids.fmt('activity', aid)} {type_} added{to}",
            activity=ids.fmt("activity", aid),
            type=type_,
            assignee=assignee,
            team=team,
        )
        _touch(conn, case["id"], at=at)
        return activity_row(content_store.activity(conn, aid))


def _activity_change(conn: sqlite3.Connection, id_or_ref: str, ref: str, what: str):
    case, wf = _open_case(conn, id_or_ref, f"{what} activity {ref}")
    return case, wf, _find_activity(conn, case, ref)


def set_activity_state(
    conn: sqlite3.Connection,
    id_or_ref: str,
    ref: str,
    state: str,
    *,
    reason: str | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "change the state of")
        if state not in wf.activity_states:
            raise InvalidInput(
                f"'{state}' is not an activity state of workflow {wf.name} (states: {', '.join(wf.activity_states)})"
            )
        if state == a["state"]:
            return activity_row(a) | {"changed": False}
        verdict = block_rules.activity_state_check(wf, a["state"], state)
        if not verdict.allowed:
            raise _refuse(f"move activity {_activity_name(a)} to {state}", case, verdict)
        at = iso(now)
        content_store.update_activity(conn, a["id"], {"state": state}, at=at)
        _event(
            conn,
            case["id"],
            "activity.state",
            actor=actor,
            at=at,
            reason=reason,
            summary=f"{_activity_name(a)}: {a['state']} -> {state}",
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            **{"from": a["state"], "to": state},
        )
        _touch(conn, case["id"], at=at)
        fired = _advance(conn, case["id"], actor=actor, now=now)
        return activity_row(content_store.activity(conn, a["id"])) | {"changed": True, "events": fired}


def set_activity_result(
    conn: sqlite3.Connection, id_or_ref: str, ref: str, pairs: list[str], *, actor: str, now: datetime
) -> dict[str, Any]:
    changes = parse_assignments(pairs, f"activity {ref} result")
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "record results on")
        if a["state"] == "cancelled":
            raise NotAllowed(
                f"cannot record results on activity {_activity_name(a)} of case {_cid(case['id'])}: it is cancelled"
            )
        at = iso(now)
        content_store.update_activity(conn, a["id"], {"result": deep_merge(a["result"], changes)}, at=at)
        _event(
            conn,
            case["id"],
            "activity.result",
            actor=actor,
            at=at,
            summary=f"{_activity_name(a)} result: {_assign_summary(changes)}",
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            changes=changes,
        )
        _touch(conn, case["id"], at=at, editor=actor)
        return activity_row(content_store.activity(conn, a["id"]))


def decide_activity(
    conn: sqlite3.Connection,
    id_or_ref: str,
    ref: str,
    decision: str,
    *,
    reason: str | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Seed 002: decide each activity, then the case. A pending decision completes the activity."""
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "decide")
        verdict = block_rules.activity_decide_check(wf, a["state"], decision)
        if not verdict.allowed:
            err = _refuse(f"decide activity {_activity_name(a)}", case, verdict)
            if decision not in wf.decisions:
                raise InvalidInput(err.message)
            raise err
        at = iso(now)
        changes: dict[str, Any] = {"decision": decision, "decided_by": actor, "decided_at": at}
        if a["state"] != "complete":
            changes["state"] = "complete"
        content_store.update_activity(conn, a["id"], changes, at=at)
        summary = f"{_activity_name(a)} decided {decision}"
        if a.get("decision") and a["decision"] != decision:
            summary += f" (was {a['decision']})"
        if "state" in changes:
            summary += f"; {a['state']} -> complete"
        _event(
            conn,
            case["id"],
            "activity.decide",
            actor=actor,
            at=at,
            reason=reason,
            summary=summary,
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            decision=decision,
            previous=a.get("decision"),
        )
        _touch(conn, case["id"], at=at)
        fired = _advance(conn, case["id"], actor=actor, now=now)
        return activity_row(content_store.activity(conn, a["id"])) | {"events": fired}


def assign_activity(
    conn: sqlite3.Connection,
    id_or_ref: str,
    ref: str,
    *,
    assignee: str | None,
    team: str | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Hand an activity to an agent or another team."""
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "assign")
        at = iso(now)
        changes = {k: v for k, v in (("assignee", assignee), ("team", team)) if v is not None}
        content_store.update_activity(conn, a["id"], changes, at=at)
        _event(
            conn,
            case["id"],
            "activity.assign",
            actor=actor,
            at=at,
            summary=f"{_activity_name(a)} handed to " + " / ".join(f"{k} {v}" for k, v in changes.items()),
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            **changes,
        )
        _touch(conn, case["id"], at=at)
        return activity_row(content_store.activity(conn, a["id"]))


# --- show -------------------------------------------------------------------------


def show_sections(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None) -> dict:
    """Parts of `show` (key -> hooks.Section): blocks, KYC child cases, activities."""
    from .hooks import Section

    blocks = [block_row(conn, b) for b in content_store.blocks(conn, case["id"])]
    kids = content_store.children(conn, case["id"])
    acts = [activity_row(a) for a in content_store.activities(conn, case["id"])]
    block_lines = [
        f"{b['name']:<16} {b['kind']:<13} {b['status_label']:<24} {b['summary']}"
        + (f" (decided by {b['decided_by']})" if b["decided_by"] else "")
        for b in blocks
    ]
    child_json = [
        {
            "id": _cid(k["id"]),
            "block": k["block"],
            "workflow": k["workflow"],
            "status": k["status"],
            "final": k["final"],
            "decision": k["decision"],
            "subject_name": k["subject_name"],
            "subject_email": k["subject_email"],
        }
        for k in kids
    ]
    child_lines = [
        f"{k['id']:<6} {k['block'] or '(superseded)':<16} {k['status']:<22} "
        f"{k['subject_name'] or k['subject_email'] or ''}".rstrip()
        for k in child_json
    ]
    act_lines = [
        f"{a['id']:<6} {a['type']:<20} {a['state']:<26} "
        + " ".join(
            x
            for x in (
                f"assignee {a['assignee']}" if a["assignee"] else "",
                f"team {a['team']}" if a["team"] else "",
                f"decision {a['decision']}" if a["decision"] else "undecided",
            )
            if x
        )
        for a in acts
    ]
    return {
        "blocks": Section("blocks", blocks, block_lines),
        "children": Section("KYC child cases", child_json, child_lines),
        "activities": Section("activities", acts, act_lines),
    }
