"""After a command: deliver what it queued in the outbox (best effort, quick).

Cheap when nothing is due: one indexed query, and requests/smtplib are
imported only when something is. Never fails the command: a receiver that is
down leaves its message queued (`casectl outbox list`, `casectl errors`) for
the next command or `casectl outbox deliver`.
"""

from __future__ import annotations

import sqlite3

import click

from ..errors import CasectlError
from .context import Invocation, Settings

TIMEOUT = 5.0  # per message, so a hanging receiver costs a command seconds, not minutes
BUDGET = 10.0  # stop starting new sends after this many seconds


def after_command(inv: Invocation) -> None:
    """Try the outbox items that are due now; failures stay queued for retry."""
    from .. import timeutil
    from ..store import outbox as outbox_store

    conn, settings = inv.conn, inv.settings
    if conn is None or settings.no_deliver or inv.delivers_itself:
        return
    now = timeutil.iso(settings.now())
    try:
        if conn.in_transaction or not outbox_store.anything_due(conn, now):
            return
        # Emails wait for `casectl outbox deliver` until an SMTP server is configured:
        # trying them after every command would only burn their attempts.
        kinds = ("webhook", "crm", "email") if _smtp_configured(settings) else ("webhook", "crm")
        if not outbox_store.anything_due(conn, now, kinds):
            return
    except sqlite3.Error:  # e.g. a database closed by the command
        return
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
        )
    except CasectlError as e:  # e.g. the database stayed locked: the messages wait for the next run
        click.echo(f"casectl: note: queued messages not delivered now ({e.message})", err=True)
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
