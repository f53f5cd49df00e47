"""init, and the db group (check; backup and restore come with reliability work)."""

from __future__ import annotations

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
        click.echo(f"{'database ready' if existed else 'created'}: {path} (schema {version})", err=not existed and False)


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
