"""Rendering: JSON documents, and listings as table, json, ndjson or csv.

On a terminal a listing is an aligned table with headers; in a pipe the
`table` format is plain tab-separated rows (stable for `cut`/`awk`), and
nothing decorative is printed.

Text for people (tables, tab-separated rows, `show`, `history`) goes through
`printable`: a control character in a value (an escape sequence in a name, a
CR in a reason) is shown as `\\x1b`, never sent to the terminal. JSON and CSV
keep every value exactly, to be read back.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import click

from .. import csvcells, fields, ids
from ..errors import UsageError

FORMATS = ("table", "json", "ndjson", "csv")


def is_tty(stream=None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def binary_stdout() -> IO[bytes]:
    """stdout for bytes (a PDF, a document): the binary buffer under the text stream."""
    return sys.stdout.buffer


# C0 controls but the tab, DEL and the C1 controls (\x9b alone starts an escape sequence).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_C1 = re.compile(r"[\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escaped(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or f"\\x{ord(c):02x}"


def printable(text: str) -> str:
    """Text for a person's terminal: control characters shown as `\\x1b`, `\\r`, `\\n` (a tab stays)."""
    return _CONTROL.sub(_escaped, text) if _CONTROL.search(text) else text


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=str)
    # json escapes C0 controls; DEL and C1 it leaves raw. As \u escapes the value is the same.
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _C1.search(text) else text


def emit_json(obj: Any) -> None:
    click.echo(dumps(obj))


def choose_format(fmt: str | None, as_json: bool) -> str:
    if as_json:
        return "json"
    fmt = (fmt or "table").lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; available: {', '.join(FORMATS)}")
    return fmt


def pick_fields(requested: str | None, available: Sequence[str], default: Sequence[str]) -> list[str]:
    if not requested:
        return list(default)
    fields = [f.strip() for f in requested.split(",") if f.strip()]
    unknown = [f for f in fields if f not in available]
    if unknown:
        raise UsageError(f"unknown field: {', '.join(unknown)}; available: {', '.join(available)}")
    return fields


def local_time(value: str | None) -> str:
    """UTC ISO strings shown in local time, but only to people at a terminal."""
    if not value or not is_tty():
        return value or ""
    try:
        t = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return value
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return dumps(value, indent=None)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def emit_rows(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    *,
    headers: dict[str, str] | None = None,
    empty: str = "no results",
) -> int:
    """Write rows in `fmt`; returns how many. Streams except for terminal tables."""
    out = sys.stdout
    n = 0
    if fmt == "json":
        out.write("[")
        for n, row in enumerate(rows, 1):
            out.write(("\n  " if n == 1 else ",\n  ") + dumps({c: row.get(c) for c in columns}, indent=None))
        out.write("\n]\n" if n else "]\n")
    elif fmt == "ndjson":
        for n, row in enumerate(rows, 1):
            out.write(dumps({c: row.get(c) for c in columns}, indent=None) + "\n")
    elif fmt == "csv":
        writer = csvcells.writer(out)
        writer.writerow(columns)
        for n, row in enumerate(rows, 1):
            writer.writerow([csv_safe(_cell(row.get(c))) for c in columns])
    elif is_tty(out):
        from tabulate import tabulate  # only people at a terminal pay for it

        table = [
            [printable(_cell(local_time(r.get(c)) if c.endswith("_at") else r.get(c))) for c in columns] for r in rows
        ]
        n = len(table)
        if n:
            out.write(tabulate(table, headers=[(headers or {}).get(c, c) for c in columns], tablefmt="simple") + "\n")
        else:
            click.echo(empty, err=True)
    else:
        for n, row in enumerate(rows, 1):
            out.write(
                "\t".join(printable(_cell(row.get(c)).replace("\t", " ").replace("\n", " ")) for c in columns) + "\n"
            )
    return n


def csv_safe(value: str) -> str:
    """Keep spreadsheets from running a cell as a formula (=, +, -, @, tab, CR)."""
    return csvcells.escape(value)


# --- cases --------------------------------------------------------------------

# The case's public fields are declared once, in casectl.fields.
CASE_FIELDS = fields.NAMES
CASE_TABLE = fields.TABLE
CASE_HEADERS = {"subject_name": "subject", "created_at": "created"}


case_row = fields.case_row


def case_document(case: dict[str, Any]) -> dict[str, Any]:
    """A case as one nested JSON document (`show --json`, `create --json`)."""
    row = case_row(case)
    subject = None
    if case.get("subject_id") is not None:
        subject = {
            "id": row.pop("subject_id"),
            "ref": row.pop("subject_ref"),
            "name": row.pop("subject_name"),
            "email": row.pop("subject_email"),
            "dob": row.pop("subject_dob"),
            "country": row.pop("country"),
            "entity_type": row.pop("entity_type"),
        }
    else:
        for k in (
            "subject_id",
            "subject_ref",
            "subject_name",
            "subject_email",
            "subject_dob",
            "country",
            "entity_type",
        ):
            row.pop(k)
    return {**row, "subject": subject}


def event_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ids.fmt("event", e["id"]),
        "at": e["at"],
        "actor": e["actor"],
        "login": e.get("login"),  # the OS account that ran the command (None before schema 9)
        "kind": e["kind"],
        "action": e.get("action"),
        "from": e.get("from_status"),
        "to": e.get("to_status"),
        "reason": e.get("reason"),
        "data": e.get("data") or {},
        "hash": e.get("hash"),
    }


def describe_event(e: dict[str, Any]) -> str:
    """One line of history for people."""
    what = e.get("action") or e["kind"]
    if e.get("from_status") and e.get("to_status") and e["from_status"] != e["to_status"]:
        what += f": {e['from_status']} -> {e['to_status']}"
    elif e.get("to_status") and e["kind"] == "created":
        what += f" in {e['to_status']}"
    data = e.get("data") or {}
    extra = data.get("summary")
    if extra:
        what += f" ({extra})"
    if e.get("reason"):
        what += f" — {e['reason']}"
    who = e["actor"]
    if e.get("login") and e["login"] != who:
        who += f" (login {e['login']})"
    return printable(f"{local_time(e['at'])}  {who}  {what}")
