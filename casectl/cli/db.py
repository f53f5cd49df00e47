"""init, and the db group: check, backup, restore."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from . import context, output
from .options import Json

app = typer.Typer()
db_app = typer.Typer(help="Check, back up and restore the database.", no_args_is_help=True)


@app.command("init")
def init(as_json: Json = False) -> None:
    """Create a new casectl database (or bring an existing one up to date).

    Example: casectl init --db ~/cases.db
    """
    path = context.db_path()
    existed = path.exists()
    conn = context.open_db(create=True)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if as_json:
        output.emit_json({"db": str(path), "created": not existed, "schema_version": version})
    else:
        click.echo(
            f"{'database ready' if existed else 'created'}: {path} (schema {version})", err=not existed and False
        )


@db_app.command("check")
def check(as_json: Json = False) -> None:
    """Verify integrity, foreign keys, event hash chains and statuses against history (exit 1 if broken).

    Example: casectl db check
    """
    from ..services import integrity

    conn = context.open_db()
    result = integrity.check(conn)
    if as_json:
        output.emit_json(result)
    else:
        for line in result["problems"]:
            click.echo(f"problem: {line}")
        click.echo(f"{'ok' if result['ok'] else 'BROKEN'}: {result['cases']} cases, {result['events']} events checked")
    if not result["ok"]:
        raise typer.Exit(1)


@db_app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the backup.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    as_json: Json = False,
) -> None:
    """Copy the database online (writers may go on) and verify the copy.

    Example: casectl db backup /backups/cases-$(date +%F).db
    """
    from ..services import backup as backup_service

    result = backup_service.backup(context.open_db(), path, force=force)
    if as_json:
        output.emit_json(result)
    else:
        click.echo(
            f"backed up to {result['backup']} ({result['size']} bytes; verified: "
            f"{result['cases']} cases, {result['events']} events)"
        )


@db_app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="The backup file to restore.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite the existing database.")] = False,
    as_json: Json = False,
) -> None:
    """Restore a verified backup over the database (refuses to overwrite without --force).

    Example: casectl db restore /backups/cases-2026-11-01.db --force
    """
    from ..services import backup as backup_service
    from ..store import connect

    result = backup_service.restore(path, context.db_path(), force=force, connect=connect)
    if as_json:
        output.emit_json(result)
    else:
        click.echo(f"restored {result['restored']} from {result['from']} ({result['cases']} cases)")
