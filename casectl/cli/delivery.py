"""After a command: deliver the messages it queued in the outbox (best effort, quick).

Only the command's own messages: the connection notes what it queues
(store.outbox.track_queued), so a read command (`list`, `show`, `errors` ...)
has nothing to send and sends nothing, and a writing command never waits on
another's receiver. Cheap when it queued nothing: one look at a table of the
connection's own, and requests/smtplib are imported only when there is
something to send. Never fails the command, which has already committed: a
receiver that is down leaves its message queued (`casectl outbox list`,
`casectl errors`) for `casectl outbox deliver`.
"""

from __future__ import annotations

import sqlite3

import click

from ..errors import CasectlError
from .context import Invocation, Settings

TIMEOUT = 5.0  # per message, so a hanging receiver costs a command seconds, not minutes
BUDGET = 10.0  # stop starting new sends after this many seconds


def after_command(inv: Invocation) -> None:
    """Try the messages this command queued; failures stay queued for retry (or fail, with the reason)."""
    from ..store import outbox as outbox_store

    conn, settings = inv.conn, inv.settings
    if conn is None or settings.no_deliver or inv.delivers_itself:
        return
    try:
        if conn.in_transaction:
            return
        queued = outbox_store.queued_here(conn)
    except sqlite3.Error:  # e.g. a database closed by the command
        return
    if not queued:
        return
    # Emails wait for `casectl outbox deliver` until an SMTP server is configured:
    # trying them after every command would only burn their attempts.
    # An http effect's answer may move the case on: applied now too, as `outbox deliver` would.
    kinds = ("webhook", "crm", "http", "email") if _smtp_configured(settings) else ("webhook", "crm", "http")
    from ..services import outbox as outbox_service

    try:
        report = outbox_service.deliver(
            conn,
            now=settings.now,
            settings=settings.send_settings(),
            timeout=min(settings.delivery_timeout(), TIMEOUT),
            max_attempts=settings.delivery_max_attempts(),
            budget=BUDGET,
            kinds=kinds,
            only=queued,
        )
    except CasectlError as e:  # e.g. the database stayed locked: the messages wait for the next run
        click.echo(f"casectl: note: queued messages not delivered now ({e.message})", err=True)
        return
    except sqlite3.Error as e:  # the command's work is committed; say so rather than fail it
        click.echo(f"casectl: note: queued messages not delivered now ({type(e).__name__})", err=True)
        return
    waiting = report.count("retry") + report.count("failed")
    if waiting:
        click.echo(f"casectl: note: {waiting} message(s) not delivered yet; see `casectl outbox list`", err=True)


def _smtp_configured(settings: Settings) -> bool:
    if settings.smtp_overrides.get("host"):
        return True
    try:
        return bool(settings.send_settings().smtp().host)
    except CasectlError:  # a broken config file: `outbox deliver` reports it
        return False
