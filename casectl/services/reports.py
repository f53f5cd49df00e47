"""What the PDF reports say: the case overview and one case's dossier.

Every number and every row of the overview comes from services.listing
(count, count_by, select) over the same CaseFilter that `list` and `stats`
use, so a report can never disagree with them. Rendering lives in
casectl.pdf; this module never imports reportlab.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import __version__, ids
from ..filters import CaseFilter, parse_sort
from ..redaction import Redactor, mask_email, mask_name, redact_filter
from ..rules import Verdict, Workflow
from ..store import dossier as dossier_store
from ..store import read
from ..timeutil import iso
from . import cases as case_service
from . import listing

BREACHES_SHOWN = 20
WAITING_SHOWN = 10


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One consistent read for the whole report: totals and rows from the same moment."""
    with read(conn):
        yield


# --- the overview -----------------------------------------------------------------


def age(start: str | None, end: datetime | str | None) -> str:
    """'45m', '7h', '12d': how long from `start` to `end`."""
    if not start or not end:
        return ""
    end_s = end if isinstance(end, str) else iso(end)
    try:
        a = datetime.fromisoformat(start)
        b = datetime.fromisoformat(end_s)
    except ValueError:
        return ""
    seconds = max(0, int((b - a).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def case_line(case: dict[str, Any], now: datetime, *, redact: bool = False) -> dict[str, Any]:
    """One row of the case table. Age runs to now for open cases, to the decision for closed ones."""
    # The row shows no data or free text: of the personal fields, only the subject's name or email.
    if redact:
        subject = mask_name(case.get("subject_name")) or mask_email(case.get("subject_email"))
    else:
        subject = case.get("subject_name") or case.get("subject_email")
    end = case.get("decided_at") if case.get("final") else now
    return {
        "id": ids.fmt("case", case["id"]),
        "subject": subject or "",
        "workflow": case["workflow"],
        "status": case["status"],
        "assignee": case.get("assignee") or "",
        "created": (case.get("created_at") or "")[:10],
        "age": age(case.get("created_at"), end or now),
        "due": (case.get("due_at") or "").replace("T", " ").rstrip("Z")[:16],
        "overdue_by": age(case.get("due_at"), now),
        "last_change": (case.get("updated_at") or "")[:10],
        "final": bool(case.get("final")),
    }


@dataclass
class Overview:
    title: str
    generated_at: str
    filters: list[str]
    filter_dict: dict[str, Any]
    total: int
    by_status: list[tuple[str, int]]
    by_workflow: list[tuple[str, int]]
    breaches_total: int
    breaches: list[dict[str, Any]]
    waiting_total: int
    waiting: list[dict[str, Any]]
    sort: str | None
    rows: Callable[[], Iterator[dict[str, Any]]]
    redacted: bool = False
    version: str = __version__
    actor: str = ""


def overview(
    conn: sqlite3.Connection,
    f: CaseFilter,
    *,
    actor: str,
    now: datetime,
    sort: str | None = None,
    redact: bool = False,
    title: str | None = None,
) -> Overview:
    """The overview's figures; `rows()` streams the case table (call it inside `snapshot`)."""
    parse_sort(sort)  # a bad --sort fails before anything is written
    breach_f = dataclasses.replace(f, overdue_at=iso(now))
    waiting_f = dataclasses.replace(f, open_only=True)

    def lines(flt: CaseFilter, sort_key: str | None, limit: int | None) -> Iterator[dict[str, Any]]:
        for c in listing.select(conn, flt, sort=sort_key, limit=limit):
            yield case_line(c, now, redact=redact)

    shown = redact_filter(f) if redact else f  # a --where on a personal key would print its value
    return Overview(
        title=title or "Case overview",
        generated_at=iso(now),
        filters=shown.describe(),
        filter_dict=shown.to_dict(),
        total=listing.count(conn, f),
        by_status=[(s or "", n) for s, n in listing.count_by(conn, f, "status")],
        by_workflow=[(w or "", n) for w, n in listing.count_by(conn, f, "workflow")],
        breaches_total=listing.count(conn, breach_f),
        breaches=list(lines(breach_f, "due", BREACHES_SHOWN)),
        waiting_total=listing.count(conn, waiting_f),
        waiting=list(lines(waiting_f, "created", WAITING_SHOWN)),
        sort=sort,
        rows=lambda: lines(f, sort, None),
        redacted=redact,
        actor=actor,
    )


# --- the dossier ------------------------------------------------------------------


@dataclass
class Dossier:
    case: dict[str, Any]
    workflow: Workflow
    allowed: list[Verdict]
    refused: list[Verdict]
    blocks: list[dict[str, Any]]
    children: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    private_omitted: int
    attachments: list[dict[str, Any]]
    history: list[dict[str, Any]]
    generated_at: str
    include_private: bool = False
    redacted: bool = False
    version: str = __version__
    actor: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def dossier(
    conn: sqlite3.Connection,
    id_or_ref: str,
    *,
    actor: str,
    now: datetime,
    include_private: bool = False,
    redact: bool = False,
) -> Dossier:
    """Everything known about one case, for printing."""
    v = case_service.view(conn, id_or_ref, actor=actor, now=now, history_limit=1)
    case = v["case"]
    _, history = case_service.history(conn, ids.fmt("case", case["id"]))
    kids = list(listing.select(conn, CaseFilter(parent=case["id"])))
    blocks = dossier_store.blocks(conn, case["id"])
    activities = dossier_store.activities(conn, case["id"])
    notes = dossier_store.notes(conn, case["id"], include_private=include_private)
    omitted = 0 if include_private else dossier_store.private_note_count(conn, case["id"])
    attachments = dossier_store.attachments(conn, case["id"])
    redactor = Redactor.for_case(case, blocks=blocks, children=kids) if redact else None
    children = [case_line(c, now, redact=redact) for c in kids]
    if redactor is not None:
        case = redactor.case(case)
        blocks = [redactor.block(b) for b in blocks]
        activities = [redactor.activity(a) for a in activities]
        notes = [redactor.note(n) for n in notes]
        history = [redactor.event(e) for e in history]
        attachments = [{**a, "filename": redactor.text(a.get("filename"))} for a in attachments]
        allowed = v["allowed"]
        refused = [
            dataclasses.replace(x, reasons=tuple(redactor.text(r) or "" for r in x.reasons)) for x in v["refused"]
        ]
    else:
        allowed, refused = v["allowed"], v["refused"]
    return Dossier(
        case=case,
        workflow=v["workflow"],
        allowed=allowed,
        refused=refused,
        blocks=blocks,
        children=children,
        activities=activities,
        notes=notes,
        private_omitted=omitted,
        attachments=attachments,
        history=history,
        generated_at=iso(now),
        include_private=include_private,
        redacted=redact,
        actor=actor,
        extra={"reupload_marks": v["reupload_marks"]},
    )
