"""redact (erasure on request) and purge (retention)."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from ..services import privacy
from ..timeutil import parse_time
from . import context, output
from .options import DryRun, Json

app = typer.Typer()


@app.command("redact")
def redact(
    target: Annotated[
        str, typer.Argument(metavar="ID", help="Subject id (S-3), email, or a case id/ref (its subject).")
    ],
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Erase a subject's personal data on request, keeping the history skeleton and a record of the erasure.

    Example: casectl redact S-3
    """
    result = privacy.redact(context.open_db(), target, actor=context.actor(), now=context.now(), dry_run=dry_run)
    if as_json:
        output.emit_json(result)
        return
    verb = "would erase" if dry_run else "erased"
    click.echo(
        f"{verb} the personal data of {result['subject']} in {len(result['cases'])} case(s): "
        f"{', '.join(result['cases']) or '-'}"
    )


@app.command("purge")
def purge(
    closed_before: Annotated[
        str,
        typer.Option(
            "--closed-before", metavar="DATE", help="Delete cases closed before this date (not later than now)."
        ),
    ],
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Delete cases closed before a date, with their history and documents (retention); a family goes whole or stays.

    Example: casectl purge --closed-before 2019-01-01 --dry-run
    """
    now = context.now()
    cutoff = parse_time(closed_before, "--closed-before", now=now)
    result = privacy.purge(context.open_db(), cutoff, actor=context.actor(), now=now, dry_run=dry_run)
    if as_json:
        output.emit_json(result)
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {result['count']} case(s) closed before {result['closed_before']}")
