"""init, and the db group: check, backup, restore."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer

from ..errors import UsageError
from ..store import chain
from . import context, output
from .options import Json

if TYPE_CHECKING:
    from ..services.anchor import Anchor

app = typer.Typer()
db_app = typer.Typer(help="Check, back up and restore the database.", no_args_is_help=True)


@app.command("init")
def init(as_json: Json = False) -> None:
    """Create a new casectl database (or bring an existing one up to date).

    Example: casectl init --db ~/cases.db
    """
    from ..store.db import schema_version

    target = context.db_path()
    existed = not isinstance(target, Path) or target.exists()
    conn = context.open_db(create=True)
    existed = existed and not getattr(conn, "fresh", False)
    version = schema_version(conn)
    path = getattr(conn, "db_path", "") or target
    key = chain.key(conn).source
    if as_json:
        output.emit_json({"db": str(path), "created": not existed, "schema_version": version, "chain_key": key})
    else:
        click.echo(f"{'database ready' if existed else 'created'}: {path} (schema {version})")
        if not existed:
            click.echo(f"chain key: {key} (keep a copy apart from the database)", err=True)


@db_app.command("check")
def check(
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            help="An anchor file from `casectl db anchor`: also name every case whose history changed, "
            "lost or gained events before it was made.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Verify integrity, foreign keys, the keyed event chains and chain heads, stored documents
    and statuses against history (exit 1 if anything is broken).

    Example: casectl db check --anchor /audit/anchor-2026-12-01.txt
    """
    from ..services import integrity

    conn = context.open_db()
    parsed = _read_anchor(conn, anchor) if anchor is not None else None
    result = integrity.check(conn, anchor=parsed)
    if as_json:
        output.emit_json(result)
    else:
        for line in result["problems"]:
            click.echo(f"problem: {line}")
        against = f"; against the anchor of {parsed.made}" if parsed is not None else ""
        click.echo(
            f"{'ok' if result['ok'] else 'BROKEN'}: {result['cases']} cases, {result['events']} events checked{against}"
        )
    if not result["ok"]:
        raise typer.Exit(1)


def _read_anchor(conn: sqlite3.Connection, path: Path) -> Anchor:
    from ..errors import EnvironmentProblem, InvalidInput, NotFound
    from ..services import anchor as anchor_service

    try:
        with open(path, encoding="utf-8", newline="") as f:
            return anchor_service.parse(conn, iter(f), str(path))
    except FileNotFoundError:
        raise NotFound(f"--anchor: no file {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"--anchor: {path} is a directory; give the anchor file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"--anchor: {path} is not a casectl anchor (not UTF-8 text)") from None
    except OSError as e:
        raise EnvironmentProblem(f"--anchor: cannot read {path}: {e.strerror}") from None


@db_app.command("anchor")
def anchor(
    output_path: Annotated[
        str | None, typer.Option("--output", "-o", help="Write the anchor to this file instead of stdout.")
    ] = None,
) -> None:
    """Print a signed digest of every case's chain head: keep it (or mail it away) and
    `db check --anchor FILE` later names every case whose history changed before it.

    Example: casectl db anchor -o /audit/anchor-$(date +%F).txt
    """
    from ..files import atomic_output, check_target
    from ..services import anchor as anchor_service

    conn = context.open_db()
    now = context.now()
    if output_path is None:
        for line in anchor_service.lines(conn, now=now):
            click.echo(line, nl=False)
        return
    with atomic_output(check_target(output_path, "--output"), binary=False) as f:
        for line in anchor_service.lines(conn, now=now):
            f.write(line)


@db_app.command("grant")
def grant(
    role: Annotated[str, typer.Argument(help="The PostgreSQL role (one per analyst), created when missing.")],
    kind: Annotated[
        str,
        typer.Option(
            "--as",
            help="auditor: reads only; agent: works cases (no purge, redaction, restore or workflow changes); "
            "lead: all of it.",
        ),
    ],
    as_json: Json = False,
) -> None:
    """Give a PostgreSQL role its rights on this database: agent, lead or auditor (PostgreSQL only).

    The role acts as itself: every event it writes records it, and --actor may not name another.
    A new role has no password; set one with psql's \\password and keep it in ~/.pgpass.

    Example: casectl db grant ann --as agent
    """
    if kind not in ("auditor", "agent", "lead"):
        raise UsageError(f"--as: '{kind}' is not one of auditor, agent, lead")
    if isinstance(context.db_path(), Path):
        raise UsageError(
            "db grant is for a PostgreSQL database; on SQLite, rights are `casectl users add NAME --role R`"
        )
    from ..store import pg, write

    conn = context.open_db()
    with write(conn):
        result = pg.grant(conn, role, kind)  # type: ignore[arg-type]
    if as_json:
        output.emit_json(result)
    else:
        click.echo(
            f"{role} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} of this database"
            + (" (new role)" if result["created"] else "")
        )


@db_app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="The database to copy: a SQLite file or a postgresql:// URL.")],
    target: Annotated[
        str, typer.Argument(help="Where to: an empty (or missing) SQLite file, or an empty PostgreSQL database.")
    ],
    as_json: Json = False,
) -> None:
    """Copy a whole database into another backend: SQLite into PostgreSQL, or back.

    Every case, event (with its keyed chain), document, outbox message, view and setting goes
    across with its id; the target must hold no work (re-running is refused, exit 5), and
    `db check` runs on it before this says it is done (exit 1 if it finds a problem).

    Example: casectl db copy ~/cases.db postgresql://lead@db.example/cases
    """
    import os

    from ..services import copy as copy_service
    from ..store import connect
    from ..store.dialect import is_postgres

    def target_of(given: str) -> str | Path:
        return given if is_postgres(given) else Path(given).expanduser()

    settings = context.settings()
    src_target, dst_target = target_of(source), target_of(target)
    if isinstance(src_target, Path) and isinstance(dst_target, Path) and src_target.resolve() == dst_target.resolve():
        raise UsageError("db copy: the source and the target are the same file")
    src = connect(src_target, busy_timeout=settings.busy_timeout, key_source=settings.chain_key)
    existed = not isinstance(dst_target, Path) or dst_target.exists()
    dst = connect(dst_target, create=True, busy_timeout=settings.busy_timeout, key_source=settings.chain_key)
    fresh = not existed or bool(getattr(dst, "fresh", False))
    own_key = chain.key(dst).source if fresh else None
    src_name, dst_name = getattr(src, "db_path", source), getattr(dst, "db_path", target)
    result = copy_service.copy(src, dst, src_name=str(src_name), dst_name=str(dst_name))
    if own_key and own_key != chain.key(dst).source and os.path.isfile(own_key):
        os.unlink(own_key)  # the key init made for the new database: its events are the source's now
    if as_json:
        output.emit_json(result)
    else:
        copied = result["copied"]
        click.echo(
            f"copied {copied.get('cases', 0)} cases, {copied.get('events', 0)} events and "
            f"{copied.get('documents', 0)} documents from {result['from']} to {result['to']}"
        )
        for line in result["check"]["problems"]:
            click.echo(f"problem: {line}")
        click.echo(f"db check on the target: {'ok' if result['check']['ok'] else 'BROKEN'}")
    if not result["check"]["ok"]:
        raise typer.Exit(1)


def _sqlite_only(command: str, tool: str) -> Path:
    """The SQLite file --db names; a PostgreSQL database is refused (exit 2) with its own tools."""
    target = context.db_path()
    if not isinstance(target, Path):
        raise UsageError(
            f"{command} works on a SQLite file; a PostgreSQL database is backed up and restored by the "
            f"server's tools ({tool}), with the chain key kept apart as for SQLite"
        )
    return target


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

    _sqlite_only("db backup", "pg_dump -Fc")
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

    target = _sqlite_only("db restore", "pg_restore")
    result = backup_service.restore(path, target, force=force, connect=connect, key_source=context.settings().chain_key)
    if as_json:
        output.emit_json(result)
    else:
        click.echo(f"restored {result['restored']} from {result['from']} ({result['cases']} cases)")
