"""list: the cases matching the shared filters, in any output format.

Its own module so that the most called command imports only what it needs
(no rules, no case services): start-up is most of a `list` call's cost.
"""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer

from ..services import listing
from . import context, filtering, output
from .filtering import FilterOptions, filter_options
from .options import Format, Json, Wide

app = typer.Typer()


@app.command("list")
@filter_options
def list_cases(
    sort: Annotated[
        str | None, typer.Option("--sort", metavar="FIELD", help="Sort by FIELD; -FIELD descending.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="At most N cases.")] = None,
    fields: Annotated[str | None, typer.Option("--fields", metavar="A,B", help="Columns to print.")] = None,
    only_ids: Annotated[bool, typer.Option("--ids", help="Print case ids only, one per line (for pipes).")] = False,
    after: Annotated[
        str | None,
        typer.Option(
            "--after", metavar="CURSOR", help="Start after this cursor (printed on stderr when a --limit page is full)."
        ),
    ] = None,
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
    *,
    filters: FilterOptions,
) -> None:
    """List cases matching filters.

    Example: casectl list --status manual_review --workflow kyb --sort -created --format csv
    """
    from ..filters import decode_cursor, encode_cursor, parse_sort

    fmt = output.choose_format(fmt, as_json)
    columns = (
        ["id"]
        if only_ids
        else output.pick_fields(
            fields,
            output.CASE_FIELDS + output.PAYMENT_FIELDS,
            output.CASE_FIELDS if fmt in ("json", "ndjson") else output.CASE_TABLE,
        )
    )
    column, descending = parse_sort(sort)
    cursor = decode_cursor(after, column, descending) if after else None
    conn = context.open_db()
    f = filtering.resolve(conn, filters, actor=context.actor(), now=context.now())
    last: list[dict[str, Any]] = []

    def remember(cases):
        for c in cases:
            last[:] = [c]
            yield output.case_row(c)

    cases = listing.select(conn, f, sort=sort, limit=limit, after=cursor)
    rows = remember(output.with_payment_fields(conn, cases, columns))
    if only_ids:
        n = 0
        for n, r in enumerate(rows, 1):
            click.echo(r["id"])
    else:
        n = output.emit_rows(rows, columns, fmt, headers=output.CASE_HEADERS, empty="no cases match", wide=wide)
    if limit and n == limit and last:
        # A full page: tell the caller where the next one starts (stderr keeps stdout clean for pipes).
        click.echo(
            f"next page: --after {encode_cursor(column, descending, last[0].get(column), last[0]['id'])}", err=True
        )
