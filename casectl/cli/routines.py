"""routines run | list."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from . import context, output
from .options import DryRun, Format, Json, Wide, Workflow

app = typer.Typer(help="Run the workflows' routines (time-based rules) from cron, or list them.", no_args_is_help=True)


@app.command("run")
def run(
    dry_run: DryRun = False,
    workflow: Workflow = None,
    routine: Annotated[str | None, typer.Option("--routine", metavar="NAME", help="Only this routine.")] = None,
    as_json: Json = False,
) -> None:
    """Fire every routine that is due: once per case per entry into its status.

    A step the rules refuse undoes that case's steps, is reported (exit stays 0)
    and is tried again on the next run.

    Example: casectl routines run   # from cron, every 15 minutes
    """
    from ..services import routines

    outcomes = routines.run(context.open_db(), now=context.now(), dry_run=dry_run, workflow=workflow, only=routine)
    counts = {k: sum(1 for o in outcomes if o.outcome == k) for k in ("fired", "would_fire", "failed")}
    if as_json:
        output.emit_json({**counts, "dry_run": dry_run, "results": [vars(o) for o in outcomes]})
        return
    for o in outcomes:
        if o.outcome == "failed":
            click.echo(
                output.printable(
                    f"{o.case} {o.routine}: failed (attempt {o.attempts}): {o.error}; tried again next run"
                ),
                err=True,
            )
        else:
            verb = "would fire" if o.outcome == "would_fire" else "fired"
            click.echo(output.printable(f"{o.case} {o.routine}: {verb} ({'; '.join(o.steps)})"))
    if dry_run:
        click.echo(f"would fire {counts['would_fire']}, would fail {counts['failed']} (dry run: nothing written)")
    else:
        click.echo(f"fired {counts['fired']}, failed {counts['failed']}")


@app.command("list")
def list_routines(workflow: Workflow = None, fmt: Format = None, as_json: Json = False, wide: Wide = False) -> None:
    """List the routines of every workflow (newest versions): status, wait, condition and steps.

    Example: casectl routines list --workflow kyb
    """
    from ..services import routines

    fmt = output.choose_format(fmt, as_json)
    rows = routines.routine_rows(context.open_db(), workflow)
    if fmt not in ("json", "ndjson"):
        rows = [{**r, "steps": "; ".join(r["steps"])} for r in rows]
    output.emit_rows(
        rows,
        ["workflow", "version", "routine", "in_status", "after", "time", "when", "steps"],
        fmt,
        empty="no routines",
        wide=wide,
    )
