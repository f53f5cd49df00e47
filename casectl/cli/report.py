"""report: the PDF case overview (any list filter or view) and the dossier of one case."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, Annotated, Any

import click
import typer

from .. import ids
from ..errors import UsageError
from ..files import atomic_output, check_target
from . import context, filtering, output
from .filtering import FilterOptions, filter_options
from .options import Json

app = typer.Typer()


def write_atomically(target: str, render: Callable[[IO[bytes]], int]) -> int:
    """Render into a temporary file beside `target`, then rename it over `target`.

    A reader sees the old file or the new one, never half a PDF; a failure
    leaves the old file as it was and no temporary behind.
    """
    with atomic_output(target) as f:
        return render(f)


@app.command("report")
@filter_options
def report(
    case: Annotated[
        str | None, typer.Argument(metavar="[ID_OR_REF]", help="A case for its dossier; none for the overview.")
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE|-", help="PDF file to write (replaced atomically); - for stdout."),
    ] = None,
    include_private: Annotated[bool, typer.Option("--include-private", help="Dossier: include private notes.")] = False,
    redact: Annotated[
        bool, typer.Option("--redact", help="Mask personal data: names, emails, dates of birth, phones, addresses.")
    ] = False,
    sort: Annotated[
        str | None,
        typer.Option("--sort", metavar="FIELD", help="Overview: order of the case table; -FIELD descending."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Overview: the report's title.")] = None,
    as_json: Json = False,
    *,
    filters: FilterOptions,
) -> None:
    """Write a PDF overview of cases, or the dossier of one case.

    Example: casectl report --status manual_review -o overview.pdf; casectl report C-12 -o C-12.pdf
    """
    from ..services import reports

    if not out:
        raise UsageError("report needs --output FILE (or -o - for stdout)")
    given = filters.given()
    if case is not None:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
            raise UsageError(f"a dossier is one case: drop the filters ({flags}) or the case id")
        if sort or title:
            raise UsageError("--sort and --title are for the overview; drop them or the case id")
    elif include_private:
        raise UsageError("--include-private is for a dossier: give a case id")
    if out == "-" and output.is_tty(output.binary_stdout()):
        raise UsageError("stdout is a terminal; redirect it (-o - > file.pdf) or give -o FILE")
    if as_json and (out == "-" or check_target(out).fd == 1):
        raise UsageError(f"--json prints a summary to stdout, where -o {out} writes the PDF; give -o FILE")

    conn = context.open_db()
    actor, now = context.actor(), context.now()
    what: dict[str, Any]
    render: Callable[[IO[bytes]], int]
    with reports.snapshot(conn):
        if case is not None:
            from ..pdf import dossier as dossier_pdf

            d = reports.dossier(conn, case, actor=actor, now=now, include_private=include_private, redact=redact)
            what = {"report": "dossier", "case": ids.fmt("case", d.case["id"])}
            render = partial(dossier_pdf.build, d)
        else:
            from ..pdf import overview as overview_pdf

            f = filtering.resolve(conn, filters, actor=actor, now=now)
            o = reports.overview(conn, f, actor=actor, now=now, sort=sort, redact=redact, title=title)
            what = {"report": "overview", "cases": o.total, "filters": o.filter_dict}
            render = partial(overview_pdf.build, o)
        if out == "-":
            stream = output.binary_stdout()
            pages = render(stream)
            stream.flush()
            return
        pages = write_atomically(out, render)
    summary = {**what, "output": str(Path(out)), "pages": pages}
    if as_json:
        output.emit_json(summary)
    else:
        detail = f"{what['cases']:,} cases" if "cases" in what else what["case"]
        click.echo(f"wrote {out} ({detail}, {pages} page{'' if pages == 1 else 's'})", err=True)
