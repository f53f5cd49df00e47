"""Rendering: JSON documents, and listings as table, json, ndjson or csv.

On a terminal a listing is an aligned table with headers that fits the
terminal's width (`shutil.get_terminal_size`, so $COLUMNS too): the widest
columns give way first, their cells cut with an ellipsis, unless `--wide`.
Widths are display cells (wcwidth), so Chinese or Japanese names align, and
times are local with their zone (`2026-12-02 18:40 +01:00`). In a pipe the
`table` format is plain tab-separated rows, whole and in UTC (stable for
`cut`/`awk`), and nothing decorative is printed.

Text for people (tables, tab-separated rows, `show`, `history`) goes through
`printable`: a control character in a value (an escape sequence in a name, a
CR in a reason) is shown as `\\x1b`, never sent to the terminal. JSON and CSV
keep every value exactly, to be read back.
"""

from __future__ import annotations

import json
import re
import shutil
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
    """UTC ISO strings shown in local time with the zone's offset, but only to people at a terminal
    (`2026-12-02 18:40 UTC`, `2026-12-02 19:40 +01:00`); pipes get the stored UTC string."""
    if not value or not is_tty():
        return value or ""
    t = _local(value)
    return value if t is None else f"{t:%Y-%m-%d %H:%M} {zone_label(t)}"


def _local(value: Any) -> datetime | None:
    """A stored UTC time in the local zone; None for anything else (or past year 9999 here)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).astimezone()
    except (ValueError, OverflowError):
        return None


def zone_label(t: datetime) -> str:
    """`UTC` for a zero offset, else `+01:00` / `-05:30`: unambiguous, unlike abbreviations (CST, IST)."""
    offset = t.utcoffset()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


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
    wide: bool = False,
) -> int:
    """Write rows in `fmt`; returns how many. Streams except for terminal tables, which fit
    the terminal's width unless `wide`."""
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
        table = [[r.get(c) for c in columns] for r in rows]
        n = len(table)
        if n:
            out.write(_terminal_table(table, columns, headers or {}, wide=wide))
        else:
            click.echo(empty, err=True)
    else:
        for n, row in enumerate(rows, 1):
            out.write(
                "\t".join(printable(_cell(row.get(c)).replace("\t", " ").replace("\n", " ")) for c in columns) + "\n"
            )
    return n


def terminal_width() -> int | None:
    """The terminal's width in cells ($COLUMNS first, as shutil reads it); None when unknown."""
    return shutil.get_terminal_size(fallback=(0, 0)).columns or None


def _terminal_table(table: list[list[Any]], columns: Sequence[str], headers: dict[str, str], *, wide: bool) -> str:
    """Rows of values as the table a terminal gets: times local, numbers to the right, fitted."""
    header = [headers.get(c, c) for c in columns]
    for i, c in enumerate(columns):
        if not _is_time(c):
            continue
        local = [_local(row[i]) for row in table]
        zones = {zone_label(t) for t in local if t is not None}
        for row, t in zip(table, local, strict=True):
            if t is not None:
                row[i] = f"{t:%Y-%m-%d %H:%M}" + ("" if len(zones) == 1 else f" {zone_label(t)}")
        if len(zones) == 1:  # one zone for the column: said once, in its header
            header[i] += f" ({zones.pop()})"
    numeric = [
        all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in col)
        for col in zip(*table, strict=True)
    ]
    # A tab would break the alignment; printable keeps it for the pipes' sake.
    body = [[printable(_cell(v)).replace("\t", " ") for v in row] for row in table]
    return render_table(
        [printable(h) for h in header],
        body,
        width=None if wide else terminal_width(),
        right=numeric,
        keep=[_uncut(c) for c in columns],
    )


def _is_time(column: str) -> bool:
    return column == "at" or column.endswith("_at")


# --- terminal tables --------------------------------------------------------------

GAP = 2  # spaces between columns
ELLIPSIS = "…"
# A column cut to fit keeps at least this many cells (and its header, while the headers fit).
MIN_WIDTH = 6
# Columns never cut: an id is what people copy from the table, and a time cut short says nothing.
UNCUT = frozenset({"id", "at"})


def _uncut(column: str) -> bool:
    return column in UNCUT or _is_time(column)


def display_width(text: str) -> int:
    """How many terminal cells `text` takes (a CJK character two, a combining mark none)."""
    from wcwidth import wcswidth, wcwidth

    n = wcswidth(text)
    return n if n >= 0 else sum(max(wcwidth(ch), 0) for ch in text)


def truncate(text: str, width: int) -> str:
    """`text` cut to at most `width` cells, ending in an ellipsis when cut."""
    if display_width(text) <= width:
        return text
    from wcwidth import wcwidth

    room, out = width - 1, []
    for ch in text:
        w = max(wcwidth(ch), 0)
        if w > room:
            break
        out.append(ch)
        room -= w
    return "".join(out) + ELLIPSIS


def fit_widths(natural: list[int], floors: list[int], total: int) -> list[int]:
    """Column widths that fit `total` cells with the gaps: the widest columns shrink first, to a
    common cap, none below its floor (when the floors alone are too wide, the table is)."""
    room = total - GAP * (len(natural) - 1)
    if sum(natural) <= room:
        return list(natural)

    def capped(cap: int) -> list[int]:
        return [max(f, min(w, cap)) for w, f in zip(natural, floors, strict=True)]

    lo, hi = 0, max(natural)  # the largest cap that fits: capped(lo) fits, capped(hi) does not
    if sum(capped(lo)) > room:
        return capped(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if sum(capped(mid)) <= room else (lo, mid)
    widths = capped(lo)
    spare = room - sum(widths)
    for i, w in enumerate(widths):  # what the cap leaves over goes to the first columns it cut
        if spare and w == lo and natural[i] > lo:
            widths[i] += 1
            spare -= 1
    return widths


def render_table(
    header: list[str],
    body: list[list[str]],
    *,
    width: int | None = None,
    right: list[bool] | None = None,
    keep: list[bool] | None = None,
) -> str:
    """An aligned table (header, dashes, rows; two spaces between columns), fitted to `width`
    cells when given. `right` aligns a column right (numbers); `keep` columns are never cut."""
    right = right or [False] * len(header)
    keep = keep or [False] * len(header)
    cells = [[display_width(v) for v in row] for row in body]
    natural = [max([display_width(h)] + [row[i] for row in cells]) for i, h in enumerate(header)]
    widths = natural
    if width is not None:
        # Headers stay whole while they fit; past that a header is cut like a cell.
        floors = [
            w if k else min(w, max(MIN_WIDTH, display_width(h))) for w, k, h in zip(natural, keep, header, strict=True)
        ]
        if sum(floors) + GAP * (len(floors) - 1) > width:
            floors = [w if k else min(w, MIN_WIDTH) for w, k in zip(natural, keep, strict=True)]
        widths = fit_widths(natural, floors, width)

    def line(values: list[str]) -> str:
        parts = []
        for v, w, r in zip(values, widths, right, strict=True):
            v = truncate(v, w)
            pad = " " * (w - display_width(v))
            parts.append(pad + v if r else v + pad)
        return (" " * GAP).join(parts).rstrip()

    lines = [line(header), (" " * GAP).join("-" * w for w in widths)]
    lines += [line(row) for row in body]
    return "\n".join(lines) + "\n"


def csv_safe(value: str) -> str:
    """Keep spreadsheets from running a cell as a formula (=, +, -, @, tab, CR)."""
    return csvcells.escape(value)


# --- cases --------------------------------------------------------------------

# The case's public fields are declared once, in casectl.fields.
CASE_FIELDS = fields.NAMES
CASE_TABLE = fields.TABLE
CASE_HEADERS = {"subject_name": "subject", "created_at": "created"}


case_row = fields.case_row
PAYMENT_FIELDS = fields.ON_REQUEST


def with_payment_fields(conn: Any, cases: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterable[dict]:
    """`cases`, each with `paid` and `payments` read when `columns` asks for either."""
    if not any(c in PAYMENT_FIELDS for c in columns):
        return cases
    from ..services.payments import with_payments

    return with_payments(conn, cases)


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


def event_who(e: dict[str, Any]) -> str:
    """The actor, and the OS login beside it when that is someone else."""
    who = e["actor"]
    if e.get("login") and e["login"] != who:
        who += f" (login {e['login']})"
    return who


def event_what(e: dict[str, Any]) -> str:
    """What happened, in words: the action or kind, from -> to, and its summary."""
    what = e.get("action") or e["kind"]
    if e.get("from_status") and e.get("to_status") and e["from_status"] != e["to_status"]:
        what += f": {e['from_status']} -> {e['to_status']}"
    elif e.get("to_status") and e["kind"] == "created":
        what += f" in {e['to_status']}"
    data = e.get("data") or {}
    extra = data.get("summary")
    if extra:
        what += f" ({extra})"
    return what


# `history` as a table: on a terminal for people, tab-separated in a pipe (id first, like every listing).
HISTORY_TABLE = ("id", "at", "who", "what", "reason")


def history_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ids.fmt("event", e["id"]),
        "at": e["at"],
        "who": event_who(e),
        "what": event_what(e),
        "reason": e.get("reason"),
    }


def describe_event(e: dict[str, Any]) -> str:
    """One line of history for people (`show`)."""
    what = event_what(e)
    if e.get("reason"):
        what += f" — {e['reason']}"
    return printable(f"{local_time(e['at'])}  {event_who(e)}  {what}")
