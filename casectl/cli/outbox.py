"""outbox list | deliver | retry, hooks add | list | rm, errors, digest."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from .. import ids
from ..services import digest as digest_service
from ..services import outbox as outbox_service
from . import context, output
from .options import Format, Json, Wide

app = typer.Typer()
outbox_app = typer.Typer(help="List, deliver and retry queued webhooks, emails and CRM calls.", no_args_is_help=True)
hooks_app = typer.Typer(help="Subscribe webhooks to case events.", no_args_is_help=True)

OUTBOX_COLUMNS = (
    "id",
    "case",
    "event",
    "kind",
    "what",
    "target",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "delivered_at",
)
OUTBOX_TABLE = ("id", "case", "kind", "what", "target", "status", "attempts", "last_error")


@outbox_app.command("list")
def list_outbox(
    failed: Annotated[bool, typer.Option("--failed", help="Only messages that gave up (status failed).")] = False,
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="pending, sending, delivered or failed (repeatable).")
    ] = None,
    case: Annotated[str | None, typer.Option("--case", metavar="ID", help="Only this case's messages.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="At most N messages.")] = None,
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """List queued, delivered and failed messages (webhooks, emails, CRM calls).

    Example: casectl outbox list --failed
    """
    from ..services import cases as case_service

    fmt = output.choose_format(fmt, as_json)
    statuses = tuple(status or ()) + (("failed",) if failed else ())
    conn = context.open_db()
    case_id = case_service.resolve_id(conn, case) if case else None
    rows = outbox_service.list_messages(conn, statuses=statuses, case_id=case_id, limit=limit)
    output.emit_rows(
        rows, OUTBOX_COLUMNS if fmt != "table" else OUTBOX_TABLE, fmt, empty="the outbox is empty", wide=wide
    )


@outbox_app.command("deliver")
def deliver(
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Send at most N messages.")] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS", help="Per message [env: CASECTL_DELIVERY_TIMEOUT; default 10]."),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            metavar="N",
            help="Give up (status failed) after N attempts [env: CASECTL_DELIVERY_MAX_ATTEMPTS; default 8].",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Send the messages that are due, retrying failures later with exponential backoff.

    Example: casectl outbox deliver   # from cron, every minute
    """
    settings = context.settings()
    conn = context.open_db()
    context.invocation().delivers_itself = True  # no second delivery after this one
    report = outbox_service.deliver(
        conn,
        now=settings.now,
        settings=settings.send_settings(),
        timeout=settings.delivery_timeout() if timeout is None else timeout,
        max_attempts=settings.delivery_max_attempts() if max_attempts is None else max_attempts,
        limit=limit,
    )
    summary = report.summary()
    if as_json:
        output.emit_json({**summary, "results": [vars(r) for r in report.results]})
        return
    for r in report.results:
        if r.outcome != "delivered":
            click.echo(
                f"{ids.fmt('outbox', r.id)} ({r.case}, {r.kind} {r.target}): {r.error}; "
                + (
                    f"retry at {r.next_attempt_at}"
                    if r.outcome == "retry"
                    else "gave up (status failed)"
                    if r.outcome == "failed"
                    else "taken over by another deliverer"
                ),
                err=True,
            )
    click.echo(f"delivered {summary['delivered']}, will retry {summary['retry']}, failed {summary['failed']}")


@outbox_app.command("retry")
def retry(
    message: Annotated[str | None, typer.Argument(metavar="[ID]", help="A failed message's id (O-3).")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed message.")] = False,
    as_json: Json = False,
) -> None:
    """Queue failed messages again, due now with a fresh count of attempts.

    Example: casectl outbox retry --all-failed
    """
    conn = context.open_db()
    queued = outbox_service.retry(conn, row_id=message, all_failed=all_failed, now=context.now())
    if as_json:
        output.emit_json({"queued": queued})
    else:
        click.echo(f"queued again: {', '.join(queued) if queued else 'nothing (no failed messages)'}")


@app.command("errors")
def errors(fmt: Format = None, as_json: Json = False, wide: Wide = False) -> None:
    """Cases whose deliveries failed, with the last error (also those still being retried).

    Example: casectl errors
    """
    fmt = output.choose_format(fmt, as_json)
    conn = context.open_db()
    rows = outbox_service.errors(conn)
    columns = ("case", "status", "workflow", "subject", "failed", "retrying", "target", "last_error", "last_attempt_at")
    output.emit_rows(
        rows,
        columns if fmt != "table" else ("case", "status", "failed", "retrying", "target", "last_error"),
        fmt,
        empty="no cases with errors",
        wide=wide,
    )


@app.command("digest")
def digest(
    since: Annotated[
        str,
        typer.Option("--since", metavar="last|DATE", help="From the last digest sent (default), or from a date/time."),
    ] = "last",
    to: Annotated[
        list[str] | None, typer.Option("--to", metavar="ADDR", help="Recipient (repeatable) [env: CASECTL_DIGEST_TO].")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the digest; send nothing, move no watermark.")
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", metavar="text|html|json", help="What to print (default: text).")
    ] = None,
    redact: Annotated[
        bool, typer.Option("--redact", help="Mask personal data: names, emails, dates of birth, phones, addresses.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Send the notification digest: decisions and new cases since the last one, waiting cases, SLA breaches.

    Example: casectl digest --to team@example.com   # crontab: 0 7 * * * casectl digest
    """
    from ..errors import UsageError

    fmt = "json" if as_json else (fmt or "text").lower()
    if fmt not in digest_service.FORMATS:
        raise UsageError(f"unknown format '{fmt}'; available: {', '.join(digest_service.FORMATS)}")
    settings = context.settings()
    conn = context.open_db()
    outcome = digest_service.run(
        conn,
        since=since,
        to=list(to or []),
        dry_run=dry_run,
        now=settings.now(),
        settings=settings.send_settings(),
        timeout=settings.delivery_timeout(),
        redact=redact,
    )
    d = outcome.digest
    if d is None:  # skipped: another digest holds the window
        click.echo(f"casectl: {outcome.skipped}", err=True)
        if fmt == "json":
            output.emit_json({"sent": False, "skipped": outcome.skipped})
        return
    if dry_run:
        click.echo(digest_service.render(d, fmt), nl=False)
        return
    if fmt == "json":
        output.emit_json({"sent": True, "to": outcome.sent_to, "digest": d.to_dict()})
    else:
        click.echo(f"digest sent to {', '.join(outcome.sent_to)}: {d.summary()}")


# --- hooks --------------------------------------------------------------------------


@hooks_app.command("add")
def add_hook(
    url: Annotated[
        str,
        typer.Argument(help="Where to POST (http:// or https://; private addresses only if allowed, see README)."),
    ],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            help="case.created, case.status_changed, case.decided or case.action.NAME (repeatable; default: all).",
        ),
    ] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only cases of this workflow.")] = None,
    secret_env: Annotated[
        str | None,
        typer.Option("--secret-env", metavar="VAR", help="Environment variable holding the whsec_... signing secret."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Subscribe a URL to case events; deliveries are signed per Standard Webhooks.

    Example: casectl hooks add https://crm.example.com/hooks --event case.decided --secret-env CRM_WEBHOOK_SECRET
    """
    settings = context.settings()
    conn = context.open_db()
    hook = outbox_service.add_hook(
        conn,
        url=url,
        events=list(event or []),
        workflow=workflow,
        secret_env=secret_env,
        actor=settings.actor,
        now=settings.now(),
        policy=settings.send_settings().target_policy(),
    )
    if as_json:
        output.emit_json(hook)
    else:
        click.echo(hook["id"])


@hooks_app.command("list")
def list_hooks(fmt: Format = None, as_json: Json = False, wide: Wide = False) -> None:
    """List webhook subscriptions (secrets show as the variable's name only).

    Example: casectl hooks list
    """
    fmt = output.choose_format(fmt, as_json)
    conn = context.open_db()
    output.emit_rows(
        outbox_service.list_hooks(conn),
        ("id", "url", "events", "workflow", "secret_env", "created_at"),
        fmt,
        empty="no hooks",
        wide=wide,
    )


@hooks_app.command("rm")
def remove_hook(hook: Annotated[str, typer.Argument(metavar="ID", help="The hook's id (H-2).")]) -> None:
    """Remove a webhook subscription (messages already queued are still delivered).

    Example: casectl hooks rm H-2
    """
    conn = context.open_db()
    click.echo(f"removed {outbox_service.remove_hook(conn, hook)}")
