"""users add | list | rm."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from . import context, output
from .options import Format, Json, Wide

app = typer.Typer(help="Users and their roles, for actions a workflow limits to roles.", no_args_is_help=True)

Roles = Annotated[list[str] | None, typer.Option("--role", "-r", metavar="ROLE", help="A role (repeatable).")]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The name the user acts as (--actor).")],
    role: Roles = None,
    as_json: Json = False,
) -> None:
    """Add a user, or give an existing one more roles.

    Example: casectl users add ann --role lead
    """
    from ..services import users

    result = users.add(context.open_db(), name, role or [], actor=context.actor(), now=context.now())
    if as_json:
        output.emit_json(result)
    else:
        click.echo(f"{result['name']}: {', '.join(result['roles']) or 'no roles'}")


@app.command("list")
def list_users(fmt: Format = None, as_json: Json = False, wide: Wide = False) -> None:
    """List users with their roles.

    Example: casectl users list --format csv
    """
    from ..services import users

    fmt = output.choose_format(fmt, as_json)
    rows = [
        {**u, "roles": ",".join(u["roles"])} if fmt not in ("json", "ndjson") else u
        for u in users.list_users(context.open_db())
    ]
    output.emit_rows(rows, ["name", "roles", "created_at", "created_by"], fmt, empty="no users", wide=wide)


@app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    role: Roles = None,
    as_json: Json = False,
) -> None:
    """Remove a user, or only the roles given.

    Example: casectl users rm ann --role lead
    """
    from ..services import users

    result = users.remove(context.open_db(), name, role or [])
    if as_json:
        output.emit_json(result)
    else:
        click.echo(f"removed {', '.join(role)} from {name}" if role else f"removed user {name}", err=True)
