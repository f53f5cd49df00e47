"""Reaching the subject (seed 004): contacting them, and appointments on a case.

Messages go through the outbox in the same transaction as the event that
records them, like every other side effect; `casectl outbox` delivers them.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from .. import ids
from ..errors import InvalidInput, NotAllowed, NotFound
from ..rules import Workflow
from ..store import appointments as appointment_store
from ..store import events as event_store
from ..store import outbox as outbox_store
from ..store import write
from ..timeutil import iso
from . import lifecycle


def _open_case(conn: sqlite3.Connection, id_or_ref: str, what: str) -> dict[str, Any]:
    case = lifecycle.load(conn, id_or_ref)
    if case["final"]:
        raise NotAllowed(f"case {ids.fmt('case', case['id'])} is {case['status']} (final); no more {what}")
    return case


def _email(
    conn: sqlite3.Connection, case: dict[str, Any], *, event_id: int, subject: str, text: str, template: str, at: str
) -> int:
    return outbox_store.enqueue(
        conn,
        case_id=case["id"],
        event_id=event_id,
        kind="email",
        target=case["subject_email"],
        payload={
            "subject": subject,
            "text": text,
            "html": None,
            "template": template,
            "case": ids.fmt("case", case["id"]),
        },
        at=at,
    )


def contact(
    conn: sqlite3.Connection, id_or_ref: str, message: str, *, subject: str | None, actor: str, now: datetime
) -> dict[str, Any]:
    """Email the case's subject; the message is queued and the contact recorded."""
    message = (message or "").strip()
    if not message:
        raise InvalidInput("contact: the message is empty; give it with --message or on stdin")
    at = iso(now)
    with write(conn):
        case = lifecycle.load(conn, id_or_ref)
        if not case.get("subject_email"):
            raise InvalidInput(f"case {ids.fmt('case', case['id'])} has no subject email to contact")
        cid = ids.fmt("case", case["id"])
        line = subject or f"About your case {case.get('ref') or cid}"
        event_id = event_store.append(
            conn,
            case["id"],
            at=at,
            actor=actor,
            kind="contact",
            data={"channel": "email", "subject": line, "summary": f"emailed the subject: {line}"},
        )
        message_id = _email(conn, case, event_id=event_id, subject=line, text=message, template="contact", at=at)
    return {
        "case": cid,
        "event": ids.fmt("event", event_id),
        "outbox": ids.fmt("outbox", message_id),
        "to": case["subject_email"],
        "subject": line,
    }


def add_appointment(
    conn: sqlite3.Connection,
    id_or_ref: str,
    *,
    starts_at: datetime,
    minutes: int,
    title: str,
    with_whom: str | None,
    notify: bool,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    if minutes <= 0:
        raise InvalidInput("appointment: --minutes must be positive")
    if not title.strip():
        raise InvalidInput("appointment: the title is empty")
    at = iso(now)
    with write(conn):
        case = _open_case(conn, id_or_ref, "appointments")
        if notify and not case.get("subject_email"):
            raise InvalidInput(f"--notify: case {ids.fmt('case', case['id'])} has no subject email")
        appointment_id = appointment_store.add(
            conn,
            case_id=case["id"],
            starts_at=iso(starts_at),
            minutes=minutes,
            title=title.strip(),
            with_whom=with_whom,
            created_at=at,
            created_by=actor,
        )
        aid = ids.fmt("appointment", appointment_id)
        event_id = event_store.append(
            conn,
            case["id"],
            at=at,
            actor=actor,
            kind="appointment.add",
            data={
                "appointment": aid,
                "starts_at": iso(starts_at),
                "minutes": minutes,
                "summary": f"{aid} {title.strip()} at {iso(starts_at)}",
            },
        )
        if notify:
            _email(
                conn,
                case,
                event_id=event_id,
                subject=f"Appointment: {title.strip()}",
                text=(
                    f"An appointment about your case {case.get('ref') or ids.fmt('case', case['id'])}:\n"
                    f"{title.strip()}, {iso(starts_at)} ({minutes} minutes)"
                    + (f" with {with_whom}" if with_whom else "")
                    + "."
                ),
                template="appointment",
                at=at,
            )
        row = appointment_store.get(conn, appointment_id)
    assert row is not None  # inserted in this transaction
    return appointment_row(row)


def cancel_appointment(
    conn: sqlite3.Connection, id_or_ref: str, appointment: str, *, reason: str | None, actor: str, now: datetime
) -> dict[str, Any]:
    at = iso(now)
    with write(conn):
        case = lifecycle.load(conn, id_or_ref)
        n = ids.parse("appointment", appointment)
        row = appointment_store.get(conn, n) if n is not None else None
        if n is None or row is None or row["case_id"] != case["id"]:
            raise NotFound(f"no appointment '{appointment}' on case {ids.fmt('case', case['id'])}")
        if row["cancelled_at"]:
            raise NotAllowed(f"{ids.fmt('appointment', n)} was already cancelled at {row['cancelled_at']}")
        appointment_store.cancel(conn, n, at=at, reason=reason)
        event_store.append(
            conn,
            case["id"],
            at=at,
            actor=actor,
            kind="appointment.cancel",
            reason=reason,
            data={"appointment": ids.fmt("appointment", n), "summary": f"{ids.fmt('appointment', n)} cancelled"},
        )
        row = appointment_store.get(conn, n)
    assert row is not None
    return appointment_row(row)


def appointments(
    conn: sqlite3.Connection,
    *,
    id_or_ref: str | None = None,
    upcoming_within: timedelta | None = None,
    now: datetime,
    include_cancelled: bool = False,
) -> list[dict[str, Any]]:
    case_id = lifecycle.resolve_id(conn, id_or_ref) if id_or_ref else None
    since = until = None
    if upcoming_within is not None:
        since, until = iso(now), iso(now + upcoming_within)
    rows = appointment_store.select(
        conn, case_id=case_id, since=since, until=until, include_cancelled=include_cancelled
    )
    return [appointment_row(r) for r in rows]


def appointment_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ids.fmt("appointment", r["id"]),
        "case": ids.fmt("case", r["case_id"]),
        "starts_at": r["starts_at"],
        "minutes": r["minutes"],
        "title": r["title"],
        "with": r["with_whom"],
        "created_by": r["created_by"],
        "cancelled_at": r["cancelled_at"],
        "subject_name": r.get("subject_name"),
    }


def show_parts(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None, now: datetime) -> dict:
    """Parts of `show`: the case's appointments."""
    rows = [appointment_row(r) for r in appointment_store.select(conn, case_id=case["id"])]
    return {"appointments": rows} if rows else {}
