"""subjects list | show."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from .. import ids
from ..errors import NotFound
from ..filters import CaseFilter
from ..services import listing
from ..store import subjects as subject_store
from . import context, output
from .options import Format, Json, Wide

app = typer.Typer(help="List subjects and show one with all its cases.", no_args_is_help=True)

SUBJECT_COLUMNS = ["id", "ref", "name", "email", "dob", "country", "entity_type", "cases", "created_at"]


def _row(s: dict) -> dict:
    return {
        "id": ids.fmt("subject", s["id"]),
        "ref": s.get("ref"),
        "name": s.get("name"),
        "email": s.get("email"),
        "dob": s.get("dob"),
        "country": s.get("country"),
        "entity_type": s.get("entity_type"),
        "cases": s.get("case_count"),
        "created_at": s.get("created_at"),
        "data": s.get("data") or {},
    }


@app.command("list")
def list_subjects(
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Name or email contains; or the subject ref.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0)] = None,
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """List subjects with how many cases each has.

    Example: casectl subjects list -q example.com
    """
    fmt = output.choose_format(fmt, as_json)
    conn = context.open_db()
    rows = [_row(s) for s in subject_store.list_(conn, limit=limit, query=query)]
    output.emit_rows(rows, SUBJECT_COLUMNS, fmt, empty="no subjects", wide=wide)


@app.command("show")
def show(
    subject: Annotated[str, typer.Argument(metavar="ID", help="Subject id (S-3), email or subject ref.")],
    as_json: Json = False,
) -> None:
    """Show a subject and every case about them.

    Example: casectl subjects show S-3
    """
    conn = context.open_db()
    n = ids.parse("subject", subject)
    s = subject_store.get(conn, n) if n is not None else None
    s = s or subject_store.find(conn, email=subject, ref=subject)
    if s is None:
        raise NotFound(f"no subject '{subject}' (looked up by id, email and subject ref)")
    cases = [output.case_row(c) for c in listing.select(conn, CaseFilter(subject_id=s["id"]), sort="id")]
    row = _row({**s, "case_count": len(cases)})
    if as_json:
        output.emit_json({**row, "cases": cases})
        return
    click.echo(f"{row['id']} {row['name'] or ''} <{row['email'] or ''}>".rstrip())
    for key in ("ref", "dob", "country", "entity_type"):
        if row.get(key):
            click.echo(f"  {key}: {row[key]}")
    click.echo(f"  cases ({len(cases)}):")
    for c in cases:
        click.echo(
            f"    {c['id']}  {c['workflow']}  {c['status']}  {c['created_at']}" + (f"  {c['ref']}" if c["ref"] else "")
        )
