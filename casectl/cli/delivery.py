"""After a command: deliver what it queued in the outbox (best effort, quick).

Cheap when nothing is due: one indexed query, and requests/smtplib are
imported only when something is. Never fails the command: a receiver that is
down leaves its message queued (`casectl outbox list`, `casectl errors`) for
the next command or `casectl outbox deliver`.
"""

from __future__ import annotations

import click

TIMEOUT = 5.0  # per message, so a hanging receiver costs a command seconds, not minutes
BUDGET = 10.0  # stop starting new sends after this many seconds


def after_command(ctx: click.Context) -> None:
    """Try the outbox items that are due now; failures stay queued for retry."""
    from .. import timeutil
    from ..errors import CasectlError
    from ..store import outbox as outbox_store

    conn = ctx.meta.get("casectl.conn")
    if conn is None:
        return
    try:
        if conn.in_transaction or not outbox_store.anything_due(conn, timeutil.iso(timeutil.now())):
            return
    except Exception:  # e.g. a database from before the outbox, or closed by the command
        return
    from ..services import outbox as outbox_service

    try:
        report = outbox_service.deliver(conn, timeout=min(outbox_service.default_timeout(), TIMEOUT),
                                        budget=BUDGET)
    except CasectlError as e:  # e.g. the database stayed locked: the messages wait for the next run
        click.echo(f"casectl: note: queued messages not delivered now ({e.message})", err=True)
        return
    waiting = report.count("retry") + report.count("failed")
    if waiting:
        click.echo(f"casectl: note: {waiting} message(s) not delivered yet; see `casectl outbox list`", err=True)
