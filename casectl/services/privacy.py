"""Erasure on request (`redact`) and retention (`purge`)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from .. import ids
from ..errors import InvalidInput, NotFound
from ..store import cases as case_store
from ..store import chain, maintenance, rollback, write
from ..store import events as event_store
from ..store import subjects as subject_store
from ..timeutil import iso


def _subject_for(conn: sqlite3.Connection, target: str) -> dict[str, Any]:
    """A subject id (S-3), an email, a subject ref, or a case id/ref (its subject)."""
    n = ids.parse("subject", target)
    subject = subject_store.get(conn, n) if n is not None and target.strip().upper().startswith("S") else None
    subject = subject or subject_store.find(conn, email=target, ref=target)
    if subject is None:
        case_id = ids.parse("case", target) or case_store.id_for_ref(conn, target.removeprefix(ids.REF_PREFIX))
        case = case_store.get(conn, case_id) if case_id else None
        if case is not None and case.get("subject_id") is not None:
            subject = subject_store.get(conn, case["subject_id"])
    if subject is None:
        raise NotFound(f"no subject for '{target}' (give a subject id S-n, an email, or a case id)")
    return subject


def redact(conn: sqlite3.Connection, target: str, *, actor: str, now: datetime, dry_run: bool = False) -> dict:
    """Erase a subject's personal data everywhere; keep the history skeleton and record the erasure."""
    at = iso(now)
    with write(conn):
        subject = _subject_for(conn, target)
        case_ids = maintenance.subject_case_ids(conn, subject["id"])
        result = {
            "subject": ids.fmt("subject", subject["id"]),
            "cases": [ids.fmt("case", c) for c in case_ids],
            "already_redacted": bool(subject.get("redacted_at")),
            "dry_run": dry_run,
        }
        if dry_run:
            rollback(conn)
            return result
        maintenance.start_secure_erasure(conn)
        maintenance.erase_subject(conn, subject["id"], at=at)
        result["erased"] = maintenance.erase_case_content(conn, case_ids, at=at)
        result["erased"]["event_texts"] = event_store.erase_texts(conn, case_ids, at=at)
        for case_id in case_ids:
            case = case_store.fetch(conn, case_id)
            blank: dict[str, Any] = {"data": {}, "registry_data": {}}
            if case.get("decision_reason"):
                blank["decision_reason"] = event_store.ERASED
            case_store.update(conn, case_id, case["version"], blank, at=at)
            event_store.append(
                conn,
                case_id,
                at=at,
                actor=actor,
                kind="redacted",
                data={"subject": result["subject"], "summary": "personal data erased on request"},
            )
        erasure = maintenance.record_erasure(
            conn,
            at=at,
            actor=actor,
            kind="redact",
            details={"subject": result["subject"], "cases": result["cases"], "erased": result["erased"]},
        )
        result["erasure"] = erasure
        maintenance.forget_erased_pages(conn)
    maintenance.flush_erased(conn)
    return result


def purge(
    conn: sqlite3.Connection, closed_before: datetime, *, actor: str, now: datetime, dry_run: bool = False
) -> dict:
    """Delete cases closed before a date, with everything they hold (retention policy).

    A case goes only with its whole family (parent and children): see
    `maintenance.purge_candidates`.
    """
    cutoff = iso(closed_before)
    if closed_before > now:
        # A cut-off in the future would reach cases that are not yet past their retention.
        raise InvalidInput(f"--closed-before: {cutoff} is later than now ({iso(now)}); give a date in the past")
    with write(conn):
        case_ids = maintenance.purge_candidates(conn, cutoff)
        result: dict[str, Any] = {
            "closed_before": cutoff,
            "cases": [ids.fmt("case", c) for c in case_ids],
            "count": len(case_ids),
            "dry_run": dry_run,
        }
        if dry_run:
            rollback(conn)
            return result
        result["deleted"] = maintenance.delete_cases(conn, case_ids)
        chain.tombstone(conn, case_ids, at=iso(now))  # their ids stay used, and db check knows why they are gone
        if case_ids:
            maintenance.record_erasure(
                conn,
                at=iso(now),
                actor=actor,
                kind="purge",
                details={
                    "closed_before": cutoff,
                    "count": len(case_ids),
                    "first": result["cases"][0],
                    "last": result["cases"][-1],
                    "deleted": result["deleted"],
                },
            )
    return result
