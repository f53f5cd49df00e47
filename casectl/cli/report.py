"""report: the PDF case overview (any list filter or view) and the dossier of one case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from .. import ids
from ..errors import UsageError
from ..files import atomic_output
from . import context, filtering, output
from .options import Json

app = typer.Typer()
FILTERED = {"report"}


def write_atomically(target: str, render: Callable[[Any], int]) -> int:
    """Render into a temporary file beside `target`, then rename it over `target`.

    A reader sees the old file or the new one, never half a PDF; a failure
    leaves the old file as it was and no temporary behind.
    """
    with atomic_output(target) as f:
        return render(f)


@app.command("report")
def report(
    case: Annotated[
        str | None, typer.Argument(metavar="[ID_OR_REF]", help="A case for its dossier; none for the overview.")
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE|-", help="PDF file to write (replaced atomically); - for stdout."),
    ] = None,
    include_private: Annotated[bool, typer.Option("--include-private", help="Dossier: include private notes.")] = False,
    redact: Annotated[bool, typer.Option("--redact", help="Mask names, emails and dates of birth.")] = False,
    sort: Annotated[
        str | None,
        typer.Option("--sort", metavar="FIELD", help="Overview: order of the case table; -FIELD descending."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Overview: the report's title.")] = None,
    as_json: Json = False,
) -> None:
    """Write a PDF overview of cases, or the dossier of one case.

    Example: casectl report --status manual_review -o overview.pdf; casectl report C-12 -o C-12.pdf
    """
    from ..services import reports

    if not out:
        raise UsageError("report needs --output FILE (or -o - for stdout)")
    given = filtering.given()
    if case is not None:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
            raise UsageError(f"a dossier is one case: drop the filters ({flags}) or the case id")
        if sort or title:
            raise UsageError("--sort and --title are for the overview; drop them or the case id")
    elif include_private:
        raise UsageError("--include-private is for a dossier: give a case id")
    if out == "-" and output.is_tty(click.get_binary_stream("stdout")):
        raise UsageError("stdout is a terminal; redirect it (-o - > file.pdf) or give -o FILE")
    if out == "-" and as_json:
        raise UsageError("--json prints a summary to stdout, where -o - writes the PDF; give -o FILE")

    conn = context.open_db()
    actor, now = context.actor(), context.now()
    with reports.snapshot(conn):
        if case is not None:
            data = reports.dossier(conn, case, actor=actor, now=now, include_private=include_private, redact=redact)
            from ..pdf import dossier as renderer

            what = {"report": "dossier", "case": ids.fmt("case", data.case["id"])}
        else:
            f = filtering.resolve(conn, actor=actor, now=now)
            data = reports.overview(conn, f, actor=actor, now=now, sort=sort, redact=redact, title=title)
            from ..pdf import overview as renderer

            what = {"report": "overview", "cases": data.total, "filters": data.filter_dict}
        if out == "-":
            stream = click.get_binary_stream("stdout")
            pages = renderer.build(data, stream)
            stream.flush()
            return
        pages = write_atomically(out, lambda f: renderer.build(data, f))
    summary = {**what, "output": str(Path(out)), "pages": pages}
    if as_json:
        output.emit_json(summary)
    else:
        detail = f"{what['cases']:,} cases" if "cases" in what else what["case"]
        click.echo(f"wrote {out} ({detail}, {pages} page{'' if pages == 1 else 's'})", err=True)
