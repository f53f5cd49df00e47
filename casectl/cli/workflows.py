"""workflows list | show | validate | add | graph."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from .. import rules
from ..errors import NotFound, UsageError
from ..services import workflows as workflow_service
from . import context, output
from .options import Json, Wide

app = typer.Typer(help="List, show, validate, add and draw workflows.", no_args_is_help=True)


def _conn_if_any():
    """Workflows are readable without a database (the built-ins); custom ones need it."""
    target = context.db_path()
    if isinstance(target, Path):
        return context.open_db() if target.exists() else None
    try:
        return context.open_db()
    except NotFound:  # a PostgreSQL database casectl has not been set up in yet
        return None


@app.command("list")
def list_workflows(as_json: Json = False, wide: Wide = False) -> None:
    """List the workflows: built-in and custom, newest version of each.

    Example: casectl workflows list
    """
    rows = [
        {
            "name": wf.name,
            "version": wf.version,
            "builtin": builtin,
            "title": wf.title,
            "initial": wf.initial,
            "statuses": len(wf.statuses),
            "final": list(wf.final_statuses),
        }
        for wf, builtin in workflow_service.all_latest(_conn_if_any())
    ]
    if as_json:
        output.emit_json(rows)
        return
    output.emit_rows(rows, ["name", "version", "builtin", "title", "initial", "final"], "table", wide=wide)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    version: Annotated[int | None, typer.Option("--version", help="A specific version.")] = None,
    as_json: Json = False,
) -> None:
    """Print a workflow's rules table: each status and the actions it allows.

    Example: casectl workflows show kyb
    """
    wf = workflow_service.get(_conn_if_any(), name, version)
    table = workflow_service.status_table(wf)
    if as_json:
        output.emit_json({"workflow": rules.workflow_to_dict(wf), "table": table})
        return
    click.echo(f"{wf.name} v{wf.version} — {wf.title}" + (f": {wf.description}" if wf.description else ""))
    from tabulate import tabulate

    body = [
        [
            r["label"] + (" (final)" if r["final"] else ""),
            r["description"],
            ", ".join(r["action_labels"]) or "None",
            r["category"],
        ]
        for r in table
    ]
    headers = ["Case status", "Description", "Available case actions", "Category"]
    click.echo(tabulate(body, headers=headers, tablefmt="github"))
    system = [
        (
            a.name,
            ", ".join(a.sources),
            " | ".join(_route_text(r) for r in a.routes),
            "automatically" if a.automatic else "casectl event",
        )
        for a in wf.actions
        if a.answers_to(rules.SYSTEM)
    ]
    if system:
        click.echo("\nSystem events:")
        click.echo(tabulate(system, headers=["Event", "From", "To", "Fired"], tablefmt="github"))
        if any(a.automatic for a in wf.actions):
            click.echo("(automatically: casectl fires it itself as soon as its guards hold)")
    click.echo(f"\nCases may be created in: {', '.join(wf.creatable)}.")
    if wf.set_status.enabled:
        click.echo(
            f"\nStatus may be set directly from {', '.join(wf.set_status.sources)} "
            f"to {', '.join(wf.set_status.targets)}."
        )
    if wf.requirements:
        click.echo("\nActivities created with each case: " + ", ".join(r.label or r.type for r in wf.requirements))
    click.echo(
        f"Decisions: {', '.join(wf.decisions)}" + (f"; four-eyes on: {', '.join(wf.four_eyes)}" if wf.four_eyes else "")
    )


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="Workflow JSON file.")],
    as_json: Json = False,
) -> None:
    """Check a workflow file against the schema and the lint rules (exit 6 if not valid).

    Example: casectl workflows validate my-flow.json
    """
    wf = workflow_service.validate_file(file)
    warnings = workflow_service.warnings(wf)
    if as_json:
        output.emit_json({"valid": True, "name": wf.name, "version": wf.version, "warnings": warnings})
    else:
        click.echo(f"{file}: valid workflow '{wf.name}' ({len(wf.statuses)} statuses, {len(wf.actions)} actions)")
        for w in warnings:
            click.echo(f"warning: {w}", err=True)


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="Workflow JSON file.")],
    as_json: Json = False,
) -> None:
    """Add a custom workflow, or a new version of one; existing cases keep theirs.

    Example: casectl workflows add my-flow.json
    """
    conn = context.open_db()
    from ..store import write

    with write(conn):
        wf, added = workflow_service.add(conn, file, now=context.now(), actor=context.actor())
    if as_json:
        output.emit_json({"name": wf.name, "version": wf.version, "added": added})
    else:
        click.echo(f"{'added' if added else 'already present:'} {wf.name} v{wf.version}")


@app.command("graph")
def graph(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="mermaid|dot", help="Diagram language.")] = "mermaid",
    version: Annotated[int | None, typer.Option("--version", help="A specific version.")] = None,
) -> None:
    """Draw a workflow's lifecycle as Mermaid or Graphviz dot, to paste into docs.

    Example: casectl workflows graph kyb --format dot | dot -Tpng > kyb.png
    """
    if fmt not in ("mermaid", "dot"):
        raise UsageError(f"unknown format '{fmt}'; available: mermaid, dot")
    click.echo(workflow_service.graph(workflow_service.get(_conn_if_any(), name, version), fmt), nl=False)


def _route_text(r: rules.model.Route) -> str:
    text = f"{r.to} if {r.when}" if r.when else r.to
    return f"{text} (from {', '.join(r.sources)})" if r.sources else text
