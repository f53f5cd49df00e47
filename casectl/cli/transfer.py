"""import (CSV in) and export (CSV, JSON, NDJSON out; one case's data package)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from .. import csvcells, files, ids
from ..errors import UsageError
from ..filters import CaseFilter
from ..services import cases as case_service
from ..services import exporter, importer
from . import context, filtering, output
from .filtering import FilterOptions, filter_options
from .options import Json, SubjectMatch

app = typer.Typer()


class _Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int, rows: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        frac = done / total if total else 1.0
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        click.echo(f"\rimporting [{bar}] {frac:4.0%}  {rows:,} rows", err=True, nl=False)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            click.echo("", err=True)


def _summary(r: importer.ImportResult) -> str:
    verb = "would create" if r.dry_run else "created"
    parts = [f"{verb} {r.created}"]
    if r.updated:
        parts.append(f"{'would update' if r.dry_run else 'updated'} {r.updated}")
    parts.append(f"{r.unchanged} already there" + (" (unchanged)" if r.updated else " (skipped)"))
    if r.invalid:
        parts.append(f"{r.invalid} invalid" + (f" (written to {r.rejects})" if r.rejects else ""))
    text = f"{r.file}: {r.rows} row{'s' if r.rows != 1 else ''}: " + ", ".join(parts)
    if r.created_ids and not r.dry_run:
        a, b = r.created_ids
        text += f"; new cases {ids.fmt('case', a)}" + (f"..{ids.fmt('case', b)}" if b != a else "")
    if r.dry_run:
        text += "; dry run, nothing was written"
    if r.rows == 0:
        text += " (the file has a header but no rows: nothing to import)"
    return text


@app.command("import")
def import_cases(
    file: Annotated[str, typer.Argument(metavar="FILE.csv", help="CSV file with a header line; - reads stdin.")],
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Workflow of the new cases (unless a workflow column says).")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option(
            "--map", metavar="MAPPING.json", help="Rename and convert columns (schemas/import-mapping.schema.json)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing.")] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the valid rows; write the invalid ones to --rejects.")
    ] = False,
    rejects: Annotated[
        str | None,
        typer.Option(
            "--rejects", metavar="FILE.csv", help="With --skip-invalid: the invalid rows, with an error column."
        ),
    ] = None,
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="Update cases whose ref exists (one event per changed case) instead of skipping them."
        ),
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", metavar="ENC", help="The file's encoding (default utf-8, with or without BOM)."),
    ] = None,
    subject: SubjectMatch = None,
    as_json: Json = False,
) -> None:
    """Import cases from a CSV file: all rows or none, and never the same ref twice.

    Example: casectl import customers.csv --workflow kyb --skip-invalid --rejects rejects.csv
    """
    if rejects and not skip_invalid:
        raise UsageError("--rejects goes with --skip-invalid (without it, any invalid row stops the import)")
    # The rejects file is written like every output (casectl.files): checked before the import
    # starts, and it takes its name (or streams into a device) only once the import has committed.
    # It may be neither the file being imported nor the database.
    if file != "-":
        files.protect(file, "the file being imported")
    files.protect_database(context.db_path())
    staging = files.check_target(rejects, "--rejects") if rejects and skip_invalid and not dry_run else None
    conn = context.open_db()
    progress = _Progress() if output.is_tty(sys.stderr) else None
    try:
        with files.staged_file(staging) if staging else contextlib.nullcontext(None) as staged:
            result = importer.import_csv(
                conn,
                file,
                workflow=workflow,
                actor=context.actor(),
                now=context.now(),
                mapping=mapping,
                dry_run=dry_run,
                skip_invalid=skip_invalid,
                update=update,
                encoding=encoding,
                rejects=staged if staged is not None else rejects,
                stdin=sys.stdin.buffer if file == "-" else None,
                progress=progress,
                subject_match=subject,
            )
        if staged is not None and result.rejects:
            result.rejects = rejects
    finally:
        if progress:
            progress.close()
    if result.ignored_columns:
        click.echo(
            f"casectl: note: ignored columns the database sets itself or the mapping drops: "
            f"{', '.join(result.ignored_columns)}",
            err=True,
        )
    if skip_invalid and result.invalid and not result.rejects:
        for line in result.errors:
            click.echo(f"  {line}", err=True)
    click.echo(_summary(result), err=True)
    if as_json:
        output.emit_json(result.as_dict())


EXPORT_FORMATS = ("csv", "json", "ndjson")


@app.command("export")
@filter_options
def export_cases(
    case: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One case (id or ref); with --package, its data package.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="csv|json|ndjson",
            help="Output format (default csv; -o FILE.json/.ndjson picks it).",
        ),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (atomically) instead of stdout.")
    ] = None,
    package: Annotated[
        str | None,
        typer.Option(
            "--package", metavar="CASE.zip", help="Write case ID's data package (JSON, history, documents, manifest)."
        ),
    ] = None,
    fields: Annotated[
        str | None,
        typer.Option("--fields", metavar="A,B", help="Columns (default: the importable ones for csv, all for json)."),
    ] = None,
    sort: Annotated[
        str | None, typer.Option("--sort", metavar="FIELD", help="Sort by FIELD; -FIELD descending (default id).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="At most N cases.")] = None,
    redact: Annotated[
        bool,
        typer.Option(
            "--redact",
            help="Mask personal data: names, emails, dates of birth, phones, addresses (packages leave documents out).",
        ),
    ] = False,
    include_private: Annotated[bool, typer.Option("--include-private", help="Put private notes in a package.")] = False,
    as_json: Json = False,
    *,
    filters: FilterOptions,
) -> None:
    """Export cases as CSV, JSON or NDJSON, or one case as a data package (the CSV imports back).

    Example: casectl export --workflow kyb --status approved -o approved.csv
    """
    conn = context.open_db()
    actor, now = context.actor(), context.now()
    if package:
        if not case:
            raise UsageError("--package needs the case: casectl export C-12 --package case.zip")
        if as_json and files.check_target(package, "--package").fd == 1:
            raise UsageError("--json prints a summary to stdout, where the package goes; give --package FILE")
        _export_package(
            conn, case, package, actor=actor, now=now, as_json=as_json, redact=redact, include_private=include_private
        )
        return
    if fmt is None:
        fmt = "json" if as_json else (Path(out).suffix.lstrip(".").lower() if out else "csv")
        if fmt not in EXPORT_FORMATS:
            fmt = "csv"
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown format '{fmt}'; available: {', '.join(EXPORT_FORMATS)}")
    f = filtering.resolve(conn, filters, actor=actor, now=now)
    if case:
        f = CaseFilter(**{**f.__dict__, "ids": (case_service.resolve_id(conn, case),)})
    if fmt == "csv" and not fields:
        columns: list[str] = list(exporter.CSV_COLUMNS)
    else:
        columns = output.pick_fields(
            fields,
            output.CASE_FIELDS + tuple(c for c in exporter.CSV_COLUMNS if c not in output.CASE_FIELDS),
            output.CASE_FIELDS,
        )
    if include_private:
        raise UsageError("--include-private goes with --package (list exports carry no notes)")
    cases = exporter.cases(conn, f, sort=sort, limit=limit, redact=redact)
    if out:
        with files.atomic_output(out, option="-o", binary=False) as stream:
            n = _write(stream, cases, columns, fmt)
        click.echo(f"exported {n} case{'s' if n != 1 else ''} to {out}", err=True)
    else:
        _write(sys.stdout, cases, columns, fmt)


def _write(stream, cases, columns: list[str], fmt: str) -> int:
    n = 0
    if fmt == "csv":
        writer = csvcells.writer(stream)
        writer.writerow(columns)
        for n, c in enumerate(cases, 1):
            record = exporter.csv_record(c)
            row = output.case_row(c)
            writer.writerow(
                [record[k] if k in record else exporter.csv_escape(output._cell(row.get(k))) for k in columns]
            )
        return n
    if fmt == "json":
        stream.write("[")
        for n, c in enumerate(cases, 1):
            row = _json_row(c)
            stream.write(("\n  " if n == 1 else ",\n  ") + output.dumps({k: row.get(k) for k in columns}, indent=None))
        stream.write("\n]\n" if n else "]\n")
        return n
    for n, c in enumerate(cases, 1):
        row = _json_row(c)
        stream.write(output.dumps({k: row.get(k) for k in columns}, indent=None) + "\n")
    return n


def _json_row(case: dict[str, Any]) -> dict[str, Any]:
    row = output.case_row(case)
    row.setdefault("country", case.get("subject_country"))
    return row


def _export_package(
    conn, case: str, path: str, *, actor: str, now, as_json: bool, redact: bool = False, include_private: bool = False
) -> None:
    from ..services import queue as queue_service
    from ..timeutil import iso

    v = case_service.view(conn, case, actor=actor, now=now, history_limit=10)
    c = v["case"]
    doc = output.case_document(c)
    _, events = case_service.history(conn, case)
    doc.update(
        allowed_actions=[{"action": x.action, "to": x.target} for x in v["allowed"]],
        refused_actions=[{"action": x.action, "reason": x.reason} for x in v["refused"]],
        reupload_marks=v["reupload_marks"],
        history=[output.event_row(e) for e in v["history"]],
        events_total=v["events_total"],
        **v["parts"],
    )
    # `show` gives agents every note; a package carries private ones only when asked.
    doc["notes"] = [
        queue_service.note_row(n) for n in queue_service.notes(conn, c["id"], include_private=include_private)
    ]
    if redact:
        doc, events = exporter.redact_package(doc, events)
    manifest = exporter.write_package(
        conn,
        path,
        case_id=c["id"],
        case_doc=doc,
        events=[output.event_row(e) for e in events],
        created_at=iso(now),
        documents=not redact,
    )
    if as_json:
        output.emit_json({"package": path, **manifest})
    else:
        docs = sum(1 for f in manifest["files"] if f.get("kind") == "document")
        click.echo(
            f"{path}: {ids.fmt('case', c['id'])}: case.json, history.json and {docs} "
            f"document{'s' if docs != 1 else ''}, listed with their sha256 in manifest.json",
            err=files.check_target(path, "--package").fd == 1,  # the zip itself went to stdout
        )
