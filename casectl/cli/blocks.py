"""blocks, block (add / set / approve / reupload / received), attach, doc."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Annotated

import click
import typer

from .. import ids
from ..errors import UsageError
from ..files import Target, atomic_output, check_target
from ..services import content
from . import context, output
from .cases import read_json_arg
from .options import Format, Json, Reason, Wide

app = typer.Typer()

BLOCK_COLUMNS = ["name", "kind", "status", "summary", "decided_by", "decided_at", "id"]
BLOCK_USAGE = (
    "usage: casectl block ID add KIND NAME [--data JSON|@FILE]\n"
    "       casectl block ID BLOCK set KEY=VALUE...\n"
    "       casectl block ID BLOCK approve [--reason TEXT]\n"
    "       casectl block ID BLOCK reupload --reason TEXT\n"
    "       casectl block ID BLOCK received FILE"
)
VERBS = ("add", "set", "approve", "reupload", "received")


def _usage(problem: str) -> UsageError:
    return UsageError(f"{problem}; verbs: {', '.join(VERBS)}", details=BLOCK_USAGE.splitlines())


def _table_row(b: dict) -> dict:
    return {**b, "status": b["status_label"]}


@app.command("blocks")
def blocks(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF", help="Case id (C-12) or external reference.")],
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """List a case's blocks with kind, status and a summary.

    Example: casectl blocks C-12 --json
    """
    fmt = output.choose_format(fmt, as_json)
    conn = context.open_db()
    c, rows = content.list_blocks(conn, case)
    if fmt == "json":  # --json and --format json: one document, the case with its blocks
        output.emit_json({"case": ids.fmt("case", c["id"]), "status": c["status"], "blocks": rows})
        return
    if fmt == "ndjson":
        output.emit_rows(rows, list(rows[0]) if rows else BLOCK_COLUMNS, fmt)
        return
    output.emit_rows([_table_row(b) for b in rows], BLOCK_COLUMNS, fmt, empty="no blocks", wide=wide)


def _print_block(b: dict, as_json: bool, message: str) -> None:
    if as_json:
        output.emit_json(b)
    else:
        click.echo(message)


@app.command("block")
def block(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ID BLOCK VERB [ARGS]...",
            help="ID add KIND NAME | ID BLOCK set KEY=VALUE... | "
            "ID BLOCK approve | ID BLOCK reupload | "
            "ID BLOCK received FILE",
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", metavar="JSON|@FILE|-", help="Data of a new block (add).")
    ] = None,
    reason: Reason = None,
    as_json: Json = False,
) -> None:
    """Add, edit, approve, ask to re-upload or receive a block.

    \b
    ID add KIND NAME [--data JSON|@FILE]    add a block (kinds: user_data, registry_data, enriched, document, kyc)
    ID BLOCK set KEY=VALUE...               edit a writable block's data (dotted keys nest)
    ID BLOCK approve [--reason TEXT]        approve a document or kyc block
    ID BLOCK reupload --reason TEXT         mark it for `act ID request_reuploads`
    ID BLOCK received FILE                  the subject's re-upload arrived

    Example: casectl block C-12 passport reupload --reason "scan is blurry"
    """
    words = list(words or [])
    if len(words) < 3:
        raise _usage("block needs ID, then `add KIND NAME` or BLOCK and a verb")
    case, second, verb, rest = words[0], words[1], words[2], words[3:]
    if second == "add":
        if len(words) != 4:
            raise _usage("block ID add takes KIND NAME")
        kind, name = words[2], words[3]
        if reason is not None:
            raise _usage("--reason goes with approve and reupload")
        block_data = read_json_arg(data, "--data")
        conn = context.open_db()
        b = content.add_block(conn, case, kind, name, block_data, actor=context.actor(), now=context.now())
        child = f" (KYC case {b['child']})" if b["child"] else ""
        _print_block(b, as_json, f"{case}: {kind} block {name} added{child}")
        return
    if verb not in VERBS[1:]:
        raise _usage(f"unknown block verb '{verb}'")
    if data is not None:
        raise _usage("--data goes with `block ID add`; to edit a block use `set KEY=VALUE`")
    if reason is not None and verb not in ("approve", "reupload"):
        raise _usage("--reason goes with approve and reupload")
    conn = context.open_db()
    actor, now = context.actor(), context.now()
    if verb == "set":
        if not rest:
            raise _usage("block ID BLOCK set needs KEY=VALUE...")
        b = content.set_block(conn, case, second, rest, actor=actor, now=now)
        _print_block(b, as_json, f"{case}: {second} updated")
        return
    if verb in ("approve", "reupload"):
        if rest:
            raise _usage(f"block ID BLOCK {verb} takes no further arguments (got {' '.join(rest)})")
        if verb == "approve":
            b = content.approve_block(conn, case, second, reason=reason, actor=actor, now=now)
            _print_block(b, as_json, f"{case}: {second} approved")
        else:
            if not reason:
                raise _usage("block ID BLOCK reupload needs --reason TEXT (it is sent to the subject)")
            b = content.reupload_block(conn, case, second, reason=reason, actor=actor, now=now)
            _print_block(
                b,
                as_json,
                f"{case}: {second} marked reupload_needed; "
                f"`casectl act {case} request_reuploads` asks for every marked block",
            )
        return
    # received FILE
    if len(rest) != 1:
        raise _usage("block ID BLOCK received takes one FILE")
    result = content.received(
        conn,
        case,
        second,
        rest[0],
        actor=actor,
        now=now,
        max_size=context.settings().max_document_size(),
        stdin=_stdin(rest[0]),
    )
    if as_json:
        output.emit_json(result)
        return
    click.echo(
        f"{result['case']}: {second} received {result['filename']} (sha256 {result['sha256'][:12]}); "
        f"back for review; case is {result['case_status']}"
    )


@app.command("attach")
def attach(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    block_name: Annotated[str, typer.Argument(metavar="BLOCK", help="Block name (e.g. passport).")],
    path: Annotated[
        str,
        typer.Argument(
            metavar="FILE|-",
            help="The file to store (- reads stdin); at most CASECTL_MAX_DOCUMENT_SIZE bytes (default 100M).",
        ),
    ],
    filename: Annotated[
        str | None,
        typer.Option(
            "--filename",
            metavar="NAME",
            help="The file name to record (default: FILE's own; 'stdin' for -); it also gives the media type.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Attach a document file to a block (stored once per content, by sha256).

    Example: casectl attach C-12 passport scans/passport.pdf
    """
    conn = context.open_db()
    result = content.attach(
        conn,
        case,
        block_name,
        path,
        actor=context.actor(),
        now=context.now(),
        max_size=context.settings().max_document_size(),
        stdin=_stdin(path),
        filename=filename,
    )
    if as_json:
        output.emit_json(result)
        return
    click.echo(
        f"{result['case']}: {block_name}: attached {result['filename']} ({result['media_type']}, "
        f"{result['size']} bytes, sha256 {result['sha256']})"
    )


def _is_stream(t: Target) -> bool:
    return t.stream or t.fd is not None


def _stdin(path: str) -> IO[bytes] | None:
    return sys.stdin.buffer if path == "-" else None


@app.command("doc")
def doc(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    block_name: Annotated[str, typer.Argument(metavar="BLOCK")],
    out: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH|-",
            help="Write the current document here (- for stdout; a directory gets the original file name).",
        ),
    ] = None,
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """Write a block's document back to a file, or list its attachments.

    Example: casectl doc C-12 passport -o passport.pdf
    """
    conn = context.open_db()
    if out is None:
        fmt = output.choose_format(fmt, as_json)
        c, rows = content.attachments(conn, case, block_name)
        rows = [
            {
                "attachment": r["id"],
                **{k: r[k] for k in ("filename", "media_type", "size", "sha256", "created_at", "created_by")},
            }
            for r in rows
        ]
        output.emit_rows(
            rows,
            ["attachment", "filename", "media_type", "size", "sha256", "created_at", "created_by"],
            fmt,
            empty=f"block {block_name} has no document",
            wide=wide,
        )
        return
    if as_json and (out == "-" or check_target(out).fd == 1):
        raise UsageError("--json prints a summary to stdout, where the document goes; give -o FILE")
    # A stream cannot take back what it was given: the document is checked before any of it goes.
    streamed = out == "-" or (not Path(out).is_dir() and _is_stream(check_target(out)))
    att, chunks = content.document(conn, case, block_name, check_first=streamed)
    if out == "-":
        stream = output.binary_stdout()
        for chunk in chunks:
            stream.write(chunk)
        stream.flush()
        return
    target = Path(out)
    if target.is_dir() and not target.is_symlink():
        target = target / Path(att["filename"]).name
    # Atomically, never through a link or over a device, mode 0600: a document is personal data.
    with atomic_output(target) as f:
        for chunk in chunks:
            f.write(chunk)
    info = {
        "path": str(target),
        "filename": att["filename"],
        "media_type": att["media_type"],
        "size": att["size"],
        "sha256": att["sha256"],
    }
    if as_json:
        output.emit_json(info)
    else:
        click.echo(f"wrote {target} ({att['size']} bytes, sha256 {att['sha256']})", err=True)
