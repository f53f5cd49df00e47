"""The notification digest for cron (seed 002's daily email).

What happened since the last digest sent: cases decided or completed, new
cases; and the state now: cases waiting longest, SLA breaches, counts by
status. Case lists and counts come from services.listing, the query code
behind `list`, so the numbers agree with it.

"Since the last digest" is an event-id watermark in the settings table, moved
only after the email went out: a failed send is reported again next time, and
no decision is reported twice. Two digests started at once send one: the
first claims the window under BEGIN IMMEDIATE; the second sees the claim and
stops. Private notes are never read here.
"""

from __future__ import annotations

import html
import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import CasectlError, UsageError
from ..filters import CaseFilter
from ..redaction import Redactor
from ..store import outbox as store
from ..store import read, write
from ..timeutil import iso, parse_time
from . import listing

if TYPE_CHECKING:
    from . import notify

WATERMARK = "digest.last_event_id"
LAST_SENT = "digest.last_sent_at"
CLAIM = "digest.claim"
CLAIM_FOR = timedelta(minutes=10)  # a digest killed mid-send blocks others no longer than this
FIRST_WINDOW = timedelta(days=1)  # the very first `--since last` looks back one day
LIST_LIMIT = 50
FORMATS = ("text", "html", "json")


class DigestNotSent(CasectlError):
    """The email did not go out; the watermark stays where it was."""


@dataclass
class Digest:
    since: str
    until: str
    after_event: int
    upto_event: int
    decided: list[dict[str, Any]] = field(default_factory=list)
    decided_total: int = 0
    new: list[dict[str, Any]] = field(default_factory=list)
    new_total: int = 0
    waiting: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    breaches_total: int = 0
    by_status: list[dict[str, Any]] = field(default_factory=list)
    open_total: int = 0
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "decided": {"total": self.decided_total, "cases": self.decided},
            "new": {"total": self.new_total, "cases": self.new},
            "waiting_longest": self.waiting,
            "sla_breaches": {"total": self.breaches_total, "cases": self.breaches},
            "by_status": self.by_status,
            "open": self.open_total,
            "total": self.total,
        }

    def summary(self) -> str:
        return (
            f"{self.decided_total} decided, {self.new_total} new, {self.breaches_total} SLA breaches, "
            f"{self.open_total} open"
        )


def _item(c: dict[str, Any], redact: bool = False) -> dict[str, Any]:
    if redact:
        # The reason is free text: it may quote the subject's name, email, phone or address.
        c = Redactor.for_case(c).case(c)
    return {
        "id": ids.fmt("case", c["id"]),
        "ref": c.get("ref"),
        "workflow": c["workflow"],
        "status": c["status"],
        "subject": c.get("subject_name"),
        "assignee": c.get("assignee"),
        "decision": c.get("decision"),
        "reason": c.get("decision_reason"),
        "created_at": c.get("created_at"),
        "updated_at": c.get("updated_at"),
        "decided_at": c.get("decided_at"),
        "due_at": c.get("due_at"),
    }


def _cases(conn: sqlite3.Connection, case_ids: list[int], sort: str, redact: bool) -> list[dict[str, Any]]:
    if not case_ids:
        return []
    return [_item(c, redact) for c in listing.select(conn, CaseFilter(ids=tuple(case_ids[:LIST_LIMIT])), sort=sort)]


def build(conn: sqlite3.Connection, *, after_event: int, since: str, now: datetime, redact: bool = False) -> Digest:
    """The digest of events after `after_event`, and of the cases as they are now (call inside a transaction)."""
    until = iso(now)
    upto = store.last_event_id(conn)
    decided_ids = store.decided_case_ids(conn, after_event, upto)
    new_ids = store.created_case_ids(conn, after_event, upto)
    overdue = CaseFilter(overdue_at=until)
    d = Digest(since=since, until=until, after_event=after_event, upto_event=upto)
    d.decided, d.decided_total = _cases(conn, decided_ids, "decided_at", redact), len(decided_ids)
    d.new, d.new_total = _cases(conn, new_ids, "created_at", redact), len(new_ids)
    d.waiting = [
        _item(c, redact) for c in listing.select(conn, CaseFilter(open_only=True), sort="updated_at", limit=10)
    ]
    d.breaches = [_item(c, redact) for c in listing.select(conn, overdue, sort="due_at", limit=LIST_LIMIT)]
    d.breaches_total = listing.count(conn, overdue)
    d.by_status = [{"status": s, "count": n} for s, n in listing.count_by(conn, CaseFilter(), "status")]
    d.open_total = listing.count(conn, CaseFilter(open_only=True))
    d.total = listing.count(conn, CaseFilter())
    return d


def _window_start(conn: sqlite3.Connection, since: str, now: datetime) -> tuple[int, str]:
    """(after_event, since as a time) for `--since last` or a date/time."""
    if since == "last":
        mark = store.get_setting(conn, WATERMARK)
        if mark is not None:
            return int(mark), store.get_setting(conn, LAST_SENT) or ""
        start = iso(now - FIRST_WINDOW)
        return store.first_event_id_at(conn, start), start
    start = iso(parse_time(since, "--since"))
    return store.first_event_id_at(conn, start), start


# --- rendering ---------------------------------------------------------------------


def _age(t: str | None, now: str) -> str:
    if not t:
        return ""
    try:
        days = (parse_time(now) - parse_time(t)).total_seconds() / 86400
    except CasectlError:
        return ""
    return f"{days:.0f}d" if days >= 1 else f"{days * 24:.0f}h"


def render_text(d: Digest) -> str:
    out = [f"casectl digest: {d.since or 'the beginning'} to {d.until}", f"{d.summary()}.", ""]

    def section(title: str, total: int, rows: list[dict[str, Any]], line) -> None:
        out.append(f"{title} ({total})")
        out.extend("  " + line(r) for r in rows)
        if total > len(rows):
            out.append(f"  ... and {total - len(rows)} more")
        if not rows:
            out.append("  none")
        out.append("")

    section(
        "Decided or completed",
        d.decided_total,
        d.decided,
        lambda r: (
            f"{r['id']}  {r['status']}  {r['subject'] or ''}  {r['decision'] or ''}"
            + (f" — {r['reason']}" if r["reason"] else "")
        ),
    )
    section(
        "New cases", d.new_total, d.new, lambda r: f"{r['id']}  {r['workflow']}  {r['status']}  {r['subject'] or ''}"
    )
    section(
        "Waiting longest",
        len(d.waiting),
        d.waiting,
        lambda r: f"{r['id']}  {r['status']}  {r['subject'] or ''}  unchanged for {_age(r['updated_at'], d.until)}",
    )
    section(
        "SLA breaches",
        d.breaches_total,
        d.breaches,
        lambda r: f"{r['id']}  {r['status']}  due {r['due_at']}  ({_age(r['due_at'], d.until)} late)",
    )
    out.append(f"Cases by status ({d.total}, {d.open_total} open)")
    out.extend(f"  {r['status']}: {r['count']}" for r in d.by_status)
    return "\n".join(out) + "\n"


def render_html(d: Digest) -> str:
    e = html.escape

    def table(title: str, total: int, rows: list[dict[str, Any]], cols: list[str]) -> str:
        head = "".join(f"<th>{e(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{e(str(r.get(c) or ''))}</td>" for c in cols) + "</tr>" for r in rows)
        more = f"<p>... and {total - len(rows)} more</p>" if total > len(rows) else ""
        return (
            f"<h2>{e(title)} ({total})</h2>"
            + (f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>none</p>")
            + more
        )

    parts = [
        "<html><body>",
        f"<h1>casectl digest</h1><p>{e(d.since or 'the beginning')} to {e(d.until)}: {e(d.summary())}.</p>",
        table("Decided or completed", d.decided_total, d.decided, ["id", "status", "subject", "decision", "reason"]),
        table("New cases", d.new_total, d.new, ["id", "workflow", "status", "subject"]),
        table("Waiting longest", len(d.waiting), d.waiting, ["id", "status", "subject", "updated_at"]),
        table("SLA breaches", d.breaches_total, d.breaches, ["id", "status", "subject", "due_at"]),
        table("Cases by status", d.total, d.by_status, ["status", "count"]),
        "</body></html>",
    ]
    return "".join(parts)


def render(d: Digest, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(d.to_dict(), indent=2, ensure_ascii=False) + "\n"
    return render_html(d) if fmt == "html" else render_text(d)


# --- running it --------------------------------------------------------------------


@dataclass
class Outcome:
    digest: Digest | None
    sent_to: list[str] = field(default_factory=list)
    dry_run: bool = False
    skipped: str | None = None  # why nothing was sent (another digest holds the window)


def run(
    conn: sqlite3.Connection,
    *,
    since: str = "last",
    to: list[str] | None = None,
    dry_run: bool = False,
    now: datetime,
    settings: notify.SendSettings,
    timeout: float = 10.0,
    redact: bool = False,
) -> Outcome:
    """Build the digest; unless dry_run, email it and move the watermark."""
    from . import notify

    if since != "last":
        parse_time(since, "--since")  # a usage error before anything else
    if dry_run:
        with read(conn):
            after, start = _window_start(conn, since, now)
            return Outcome(build(conn, after_event=after, since=start, now=now, redact=redact), dry_run=True)
    cfg = settings.smtp()
    recipients = list(to or cfg.digest_to)
    if not recipients:
        raise UsageError(
            "no recipients: give --to ADDR (repeatable) or set CASECTL_DIGEST_TO, or use --dry-run to print the digest"
        )
    if not cfg.host:
        raise UsageError(
            "no SMTP server configured: set CASECTL_SMTP_HOST (or [smtp] host in the config file), "
            "or use --dry-run to print the digest"
        )
    me = f"{os.getpid()}:{id(conn):x}:{iso(now)}"
    with write(conn):
        claim = _active_claim(conn, now)
        if claim:
            return Outcome(None, skipped=f"another digest (started {claim.get('at')}) is being sent; nothing sent")
        after, start = _window_start(conn, since, now)
        digest = build(conn, after_event=after, since=start, now=now, redact=redact)
        store.set_setting(conn, CLAIM, json.dumps({"by": me, "at": iso(now), "until": iso(now + CLAIM_FOR)}))
        instance = store.instance_id(conn)
    subject = f"casectl digest: {digest.summary()}"
    # An RFC 5322 msg-id is a dot-atom: no colon (a timestamp's would cut it short).
    stamp = iso(now).replace("-", "").replace(":", "")
    try:
        notify.send_email(
            cfg,
            recipients,
            subject,
            render_text(digest),
            render_html(digest),
            f"digest.{instance}.{digest.upto_event}.{stamp}",
            timeout=timeout,
            secrets=settings.secrets,
        )
    except notify.DeliveryError as e:
        with write(conn):
            _release(conn, me)
        raise DigestNotSent(
            f"digest not sent: {e}; the watermark did not move, so the next run reports these cases again"
        ) from None
    with write(conn):
        _release(conn, me)
        current = store.get_setting(conn, WATERMARK)
        if current is None or int(current) < digest.upto_event:
            store.set_setting(conn, WATERMARK, str(digest.upto_event))
        store.set_setting(conn, LAST_SENT, digest.until)
    return Outcome(digest, sent_to=recipients)


def _active_claim(conn: sqlite3.Connection, now: datetime) -> dict[str, Any] | None:
    raw = store.get_setting(conn, CLAIM)
    if not raw:
        return None
    try:
        claim = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return claim if claim.get("until", "") > iso(now) else None


def _release(conn: sqlite3.Connection, me: str) -> None:
    raw = store.get_setting(conn, CLAIM)
    if raw and json.loads(raw).get("by") == me:
        store.set_setting(conn, CLAIM, None)


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    return {"last_event_id": store.get_setting(conn, WATERMARK), "last_sent_at": store.get_setting(conn, LAST_SENT)}
