"""contact, appointment, appointments: reaching the subject (seed 004)."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from ..errors import InvalidInput, UsageError
from ..services import engage
from ..timeutil import parse_duration, parse_time
from . import context, output
from .options import Format, Json, Wide

app = typer.Typer()

APPOINTMENT_COLUMNS = ["id", "case", "starts_at", "minutes", "title", "with", "subject_name", "cancelled_at"]


@app.command("contact")
def contact(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    message: Annotated[
        str | None, typer.Option("--message", "-m", metavar="TEXT|-", help="The message (- reads stdin).")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject-line", help="The email's subject line.")] = None,
    as_json: Json = False,
) -> None:
    """Email the case's subject; the message is queued in the outbox and recorded in the history.

    Example: casectl contact C-12 -m "Please send a certified copy of your passport."
    """
    if subject is not None and any(c in subject for c in "\r\n\x00"):
        # A header is one line: a line break would make an email that can never be built.
        raise InvalidInput("--subject-line: one line only (it has a line break)")
    if message is None or message == "-":
        if message is None and sys.stdin.isatty():
            raise UsageError("give the message with --message TEXT or on stdin")
        message = sys.stdin.read()
    result = engage.contact(context.open_db(), case, message, subject=subject, actor=context.actor(), now=context.now())
    if as_json:
        output.emit_json(result)
    else:
        click.echo(f"{result['case']}: message to {result['to']} queued as {result['outbox']} ({result['subject']})")


@app.command("appointment", context_settings={"ignore_unknown_options": False})
def appointment(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    verb: Annotated[str, typer.Argument(metavar="add|cancel")],
    args: Annotated[list[str] | None, typer.Argument(metavar="WHEN TITLE | APPOINTMENT")] = None,
    minutes: Annotated[int, typer.Option("--minutes", help="How long (add).")] = 30,
    with_whom: Annotated[str | None, typer.Option("--with", help="Who the appointment is with (add).")] = None,
    notify: Annotated[bool, typer.Option("--notify", help="Email the subject about it (add).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (cancel).")] = None,
    as_json: Json = False,
) -> None:
    """Log an appointment on a case, or cancel one.

    Example: casectl appointment C-12 add 2026-12-01T10:00 "Identity check call" --with "Mei Chen" --notify
    """
    args = list(args or [])
    conn = context.open_db()
    if verb == "add":
        if len(args) != 2:
            raise UsageError("usage: casectl appointment ID add WHEN TITLE [--minutes N] [--with WHO] [--notify]")
        row = engage.add_appointment(
            conn,
            case,
            starts_at=parse_time(args[0], "WHEN", now=context.now(), ahead=True),  # `2d` is in two days
            minutes=minutes,
            title=args[1],
            with_whom=with_whom,
            notify=notify,
            actor=context.actor(),
            now=context.now(),
        )
        what = "logged"
    elif verb == "cancel":
        if len(args) != 1:
            raise UsageError("usage: casectl appointment ID cancel APPOINTMENT [--reason TEXT]")
        row = engage.cancel_appointment(conn, case, args[0], reason=reason, actor=context.actor(), now=context.now())
        what = "cancelled"
    else:
        raise UsageError(f"unknown verb '{verb}'; use add or cancel")
    if as_json:
        output.emit_json(row)
    else:
        click.echo(f"{row['case']}: {row['id']} {what}: {row['title']} at {row['starts_at']}")


@app.command("appointments")
def appointments(
    case: Annotated[
        str | None, typer.Argument(metavar="[ID_OR_REF]", help="One case's; none for every case's.")
    ] = None,
    upcoming: Annotated[
        str | None,
        typer.Option("--upcoming", metavar="DURATION", help="Only those starting within DURATION from now (7d)."),
    ] = None,
    include_cancelled: Annotated[bool, typer.Option("--include-cancelled", help="Show cancelled ones too.")] = False,
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """List appointments, of one case or of all, soonest first.

    Example: casectl appointments --upcoming 7d
    """
    fmt = output.choose_format(fmt, as_json)
    within = parse_duration(upcoming, "--upcoming") if upcoming else None
    rows = engage.appointments(
        context.open_db(),
        id_or_ref=case,
        upcoming_within=within,
        now=context.now(),
        include_cancelled=include_cancelled,
    )
    output.emit_rows(rows, APPOINTMENT_COLUMNS, fmt, empty="no appointments", wide=wide)
