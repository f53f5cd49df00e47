"""Delivering the outbox: claim a due message, send it, record the outcome.

At-least-once: a message is claimed (status 'sending', a lease in
claimed_until) in one short transaction, sent with no lock held, and marked
in another. A deliverer killed between the two leaves the claim to expire;
the next run sends the message again with the same idempotency key (its
message id, given when it was queued), so receivers can drop the duplicate.
Two deliverers never hold the same message at once: claiming runs under
BEGIN IMMEDIATE. One bad message never stops the others: whatever goes wrong
with it is recorded on it, and the run moves on.

An http effect's answer is read when it arrives (still with no lock) and
applied to its case in the transaction that marks the message delivered, and
only if the claim is still ours (integrations.py): sent twice after a crash,
it is applied once. When such a message gives up, its failure is recorded on
the case, and its error_event fired, in the transaction that marks it failed.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import CasectlError, InvalidInput, NotFound, UsageError
from ..store import outbox as store
from ..store import savepoint, write
from ..timeutil import iso

if TYPE_CHECKING:
    from . import integrations, notify

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
HTTP_KINDS = ("webhook", "crm", "http")  # the kinds sent over HTTP (to targets the policy allows)


def backoff(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: 30s, 1m, 2m, 4m ... capped at 6h."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def lease(timeout: float) -> timedelta:
    """How long a claim holds: longer than one send can take, so only a dead deliverer loses it."""
    return timedelta(seconds=2 * timeout + 30)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def message_id(row: dict[str, Any], instance: str) -> str:
    """The idempotency key: the one given when the message was queued (store.enqueue); a message
    queued before keys were given gets one from the database's instance id, its event and its row."""
    key = (row.get("payload") or {}).get("message_id")
    if isinstance(key, str) and key:
        return key
    event = f"_{ids.fmt('event', row['event_id'])}" if row.get("event_id") else ""
    return f"msg_{instance}{event}_{ids.fmt('outbox', row['id'])}"


@dataclass
class Result:
    id: int
    case: str | None
    kind: str
    target: str | None
    outcome: str  # delivered | retry | failed | lost_claim
    attempts: int
    error: str | None = None
    next_attempt_at: str | None = None


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    def summary(self) -> dict[str, int]:
        return {k: self.count(k) for k in ("delivered", "retry", "failed")}


def send(
    row: dict[str, Any],
    *,
    timeout: float,
    settings: notify.SendSettings,
    smtp: notify.SmtpConfig | None,
    out: notify.Outbound | None,
    msg_id: str,
) -> integrations.Mapped | None:
    """Send one outbox row; raises notify.DeliveryError when it did not go out.
    `out` (where HTTP messages may go) is needed for webhooks, CRM calls and http effects.
    An http effect's answer comes back as its mappings read it (integrations.read)."""
    from . import integrations, notify

    payload = row["payload"] or {}
    kind = row["kind"]
    if kind in HTTP_KINDS and out is None:
        out = notify.Outbound.from_settings(settings)
    if kind == "http":
        assert out is not None
        answer = notify.send_http(row["target"] or "", payload, msg_id, timeout=timeout, out=out)
        return integrations.read(payload, answer)
    if kind in ("webhook", "crm"):
        assert out is not None
        sender = notify.send_webhook if kind == "webhook" else notify.send_crm
        sender(row["target"] or "", payload, msg_id, timeout=timeout, out=out)
    elif kind == "email":
        to = [a.strip() for a in (row["target"] or "").split(",") if a.strip()]
        notify.send_email(
            smtp or settings.smtp(),
            to,
            str(payload.get("subject") or "(no subject)"),
            str(payload.get("text") or ""),
            payload.get("html"),
            msg_id,
            timeout=timeout,
            secrets=settings.secrets,
        )
    else:
        raise notify.DeliveryError(f"unknown kind of message '{kind}'", permanent=True)
    return None


def deliver(
    conn: sqlite3.Connection,
    *,
    now: Callable[[], datetime],
    settings: notify.SendSettings,
    timeout: float = DEFAULT_TIMEOUT,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    limit: int | None = None,
    budget: float | None = None,
    worker: str | None = None,
    kinds: tuple[str, ...] | None = None,
    only: list[int] | None = None,
) -> Report:
    """Send what is due, one claimed message at a time, until nothing is due, `limit` sent or `budget` seconds.

    `now` is the clock, read for each message: a long run must not claim with a stale time.
    `only`: just these messages (those a command queued), not everything that is due.
    A message that cannot be built or whose target is refused fails at once, with the reason.
    """
    from . import notify

    if timeout <= 0:
        raise UsageError("--timeout must be greater than 0")
    if max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    worker = worker or worker_id()
    report = Report()
    started = time.monotonic()
    smtp: notify.SmtpConfig | None = None
    out: notify.Outbound | None = None
    while limit is None or len(report.results) < limit:
        if budget is not None and time.monotonic() - started > budget:
            break
        t = now()
        with write(conn):
            rows = store.claim(
                conn, worker=worker, now=iso(t), until=iso(t + lease(timeout)), limit=1, kinds=kinds, ids=only
            )
            instance = store.instance_id(conn) if rows else ""
        if not rows:
            break
        row = rows[0]
        error, permanent, http_status = None, False, None
        answer: integrations.Mapped | None = None
        try:
            msg_id = message_id(row, instance)
            if row["kind"] == "email" and smtp is None:
                try:
                    smtp = settings.smtp()
                except InvalidInput as e:
                    raise notify.DeliveryError(e.message) from None
            if row["kind"] in HTTP_KINDS and out is None:
                try:
                    out = notify.Outbound.from_settings(settings)
                except InvalidInput as e:
                    raise notify.DeliveryError(e.message) from None
            answer = send(row, timeout=timeout, settings=settings, smtp=smtp, out=out, msg_id=msg_id)
        except notify.DeliveryError as e:
            error, permanent, http_status = _one_line(str(e)), e.permanent, e.http_status
        except Exception as e:  # one bad message must never stop the ones behind it
            # Only the kind of failure is kept: its text may quote the message, which may hold a secret.
            error, permanent = f"cannot send this message ({type(e).__name__})", True
        t = now()
        result = Result(
            row["id"], ids.fmt("case", row["case_id"]), row["kind"], row["target"], "delivered", row["attempts"], error
        )
        with write(conn):
            if error is None:
                ok, error = _mark_delivered(conn, row, answer, worker=worker, now=t)
                if error is not None:  # its answer could not be applied: the same answer never will be
                    permanent, http_status, result.error = True, answer.status if answer else None, error
            if error is not None:
                again = row["attempts"] < max_attempts and not permanent
                nxt = iso(t + backoff(row["attempts"])) if again else None
                ok = store.mark_attempt_failed(
                    conn, row["id"], worker=worker, at=iso(t), error=error, next_attempt_at=nxt
                )
                result.outcome = "retry" if nxt else "failed"
                result.next_attempt_at = nxt
                if ok and nxt is None and row["kind"] == "http":
                    from . import integrations

                    integrations.gave_up(conn, row, error, http_status=http_status, now=t)
        if not ok:  # our lease ran out and another deliverer took the message over
            result.outcome = "lost_claim"
        report.results.append(result)
    return report


def _mark_delivered(
    conn: sqlite3.Connection,
    row: dict[str, Any],
    answer: integrations.Mapped | None,
    *,
    worker: str,
    now: datetime,
) -> tuple[bool, str | None]:
    """Mark the message delivered if the claim is still ours, and apply an http effect's answer
    with the mark (so it is applied once, by the deliverer whose mark counts). Returns (still
    ours, why its answer could not be applied): then the mark is undone too, and the caller
    fails the message."""
    if answer is None:
        return store.mark_delivered(conn, row["id"], worker=worker, at=iso(now)), None
    from . import integrations

    try:
        with savepoint(conn, "http_answer"):
            ok = store.mark_delivered(conn, row["id"], worker=worker, at=iso(now))
            if ok:
                integrations.answered(conn, row, answer, now=now)
    except Exception as e:  # one bad answer must never stop the messages behind it
        # Only a domain error's text is kept: another's may quote the answer.
        why = e.message if isinstance(e, CasectlError) else type(e).__name__
        return True, _one_line(f"answered HTTP {answer.status}, but its answer could not be applied: {why}")
    return ok, None


def _one_line(text: str) -> str:
    """An error as one line (it is printed, listed and stored)."""
    return " ".join(text.split())[:1000]


# --- listing and retrying ----------------------------------------------------------


def row_view(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox row as people and scripts see it (no secrets: only the variable names)."""
    payload = row.get("payload") or {}
    what = payload.get("type") or payload.get("template") or payload.get("method")
    if row["kind"] == "http":  # a call is known by its effect's name
        what = payload.get("name") or what
    return {
        "id": ids.fmt("outbox", row["id"]),
        "case": ids.fmt("case", row.get("case_id")),
        "event": ids.fmt("event", row.get("event_id")),
        "kind": row["kind"],
        "what": what,
        "target": row.get("target"),
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": row.get("next_attempt_at") if row["status"] in ("pending", "sending") else None,
        "last_error": row.get("last_error"),
        "created_at": row.get("created_at"),
        "delivered_at": row.get("delivered_at"),
    }


def list_messages(
    conn: sqlite3.Connection, *, statuses: tuple[str, ...] = (), case_id: int | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    bad = [s for s in statuses if s not in store.STATUSES]
    if bad:
        raise UsageError(f"unknown outbox status '{bad[0]}'; statuses: {', '.join(store.STATUSES)}")
    return [row_view(r) for r in store.list_(conn, statuses=statuses, case_id=case_id, limit=limit)]


def retry(conn: sqlite3.Connection, *, row_id: str | None, all_failed: bool, now: datetime) -> list[str]:
    """Queue failed messages again (due now, attempts reset). Returns their ids."""
    if bool(row_id) == bool(all_failed):
        raise UsageError("give one outbox id (O-3) or --all-failed")
    with write(conn):
        if all_failed or not row_id:  # (not both, not neither: checked above)
            wanted = store.failed_ids(conn)
        else:
            n = ids.parse("outbox", row_id)
            row = store.get(conn, n) if n is not None else None
            if n is None or row is None:
                raise NotFound(f"no outbox message '{row_id}'; see `casectl outbox list`")
            if row["status"] != "failed":
                raise UsageError(
                    f"{ids.fmt('outbox', n)} is {row['status']}, not failed; only failed messages "
                    "are retried by hand (pending ones are retried automatically)"
                )
            wanted = [n]
        store.requeue(conn, wanted, at=iso(now))
    return [ids.fmt("outbox", i) for i in wanted]


def errors(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Seed 001's "cases with errors": cases whose deliveries failed or keep failing."""
    return [
        {
            "case": ids.fmt("case", r["case_id"]),
            "status": r["case_status"],
            "workflow": r["workflow"],
            "subject": r["subject_name"],
            "failed": r["failed"],
            "retrying": r["retrying"],
            "last_error": r["last_error"],
            "target": r["last_target"],
            "last_attempt_at": r["last_attempt_at"],
        }
        for r in store.cases_with_errors(conn)
    ]


# --- webhook subscriptions -----------------------------------------------------------


def check_secret_env(name: str | None, what: str = "--secret-env") -> None:
    from .notify import ENV_NAME

    if name is None:
        return
    if name.startswith("whsec_") or not ENV_NAME.match(name):
        # Never echo the value: it may be the secret itself, pasted by mistake.
        raise InvalidInput(
            f"{what} takes the NAME of an environment variable that holds the secret "
            "(e.g. CASECTL_WEBHOOK_SECRET), not the secret itself"
        )


def add_hook(
    conn: sqlite3.Connection,
    *,
    url: str,
    events: list[str],
    workflow: str | None,
    secret_env: str | None,
    actor: str,
    now: datetime,
    policy: notify.TargetPolicy,
) -> dict[str, Any]:
    """Subscribe URL to case events (all of them when `events` is empty), if messages may go there."""
    from . import effects, notify
    from . import workflows as workflow_service

    problem = notify.target_problem(url, policy)
    if problem:
        raise InvalidInput(problem)
    check_secret_env(secret_env)
    events = list(dict.fromkeys(e.strip() for e in events if e.strip())) or ["*"]
    for e in events:
        if not effects.valid_event_type(e):
            raise InvalidInput(
                f"--event: unknown event '{e}'; events: {', '.join(effects.EVENT_TYPES)}, case.action.NAME or * (all)"
            )
    wfs = [workflow_service.get(conn, workflow)] if workflow else [wf for wf, _ in workflow_service.all_latest(conn)]
    for e in events:
        if e.startswith(effects.ACTION_PREFIX):
            name = e[len(effects.ACTION_PREFIX) :]
            if not any(wf.action(name) for wf in wfs):
                where = f"workflow {workflow}" if workflow else "any workflow"
                raise InvalidInput(f"--event: {e}: no action '{name}' in {where}")
    with write(conn):
        hook_id = store.add_hook(
            conn, url=url, events=events, workflow=workflow, secret_env=secret_env, at=iso(now), actor=actor
        )
    return hook_view(
        {
            "id": hook_id,
            "url": url,
            "events": events,
            "workflow": workflow,
            "secret_env": secret_env,
            "created_at": iso(now),
            "created_by": actor,
        }
    )


def hook_view(h: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"H-{h['id']}",
        "url": h["url"],
        "events": h["events"],
        "workflow": h.get("workflow"),
        "secret_env": h.get("secret_env"),
        "created_at": h.get("created_at"),
        "created_by": h.get("created_by"),
    }


def list_hooks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [hook_view(h) for h in store.hooks(conn)]


def remove_hook(conn: sqlite3.Connection, hook_id: str) -> str:
    text = (hook_id or "").strip()
    n = (
        int(text[2:])
        if text.upper().startswith("H-") and text[2:].isdigit()
        else (int(text) if text.isdigit() else None)
    )
    with write(conn):
        if n is None or not store.remove_hook(conn, n):
            raise NotFound(f"no hook '{hook_id}'; see `casectl hooks list`")
    return f"H-{n}"


def show_parts(conn: sqlite3.Connection, *, case: dict, wf: Any, actor: str | None, now: datetime) -> dict:
    """Parts of `show`: this case's deliveries."""
    rows = [row_view(r) for r in store.list_(conn, case_id=case["id"])]
    return {"deliveries": rows} if rows else {}
