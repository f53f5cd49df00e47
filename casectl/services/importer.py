"""Importing cases from CSV: streamed, validated, atomic and idempotent.

The file is read once for its sha256 and once for its rows, in batches: only
one batch is in memory at a time, and the refs already read live in a TEMP
table, so memory stays flat however large the file. Everything happens in one
write transaction: an invalid row (unless --skip-invalid) or a killed process
leaves the database as it was. The importer reads, maps and checks each row
(reporting every bad one) and hands each batch of new cases to the lifecycle
kernel's batch creation, `lifecycle.insert_cases`, the same path `casectl
create` takes for one case (subjects reused by email, workflow version
recorded, hash-chained `created` event, SLA clock, followers).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import hashlib
import io
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .. import csvcells, files, rules
from .. import fields as case_fields
from ..csvcells import unescape as csv_unescape
from ..errors import EnvironmentProblem, InvalidInput, NotAllowed, NotFound, UsageError, describe
from ..nested import deep_merge, set_path
from ..rules import Workflow
from ..store import bulk, write
from ..store import cases as case_store
from ..store import events as event_store
from ..timeutil import iso
from . import lifecycle, validate
from . import workflows as workflow_service
from .records import NewCase

BATCH = 1000
MAX_ERRORS_SHOWN = 50
FIELD_LIMIT = 64 * 1024 * 1024  # one cell; csv's default (128 KiB) is too small for real exports

# Case and subject fields a column may fill (header names are matched case-insensitively):
# the importable fields of casectl.fields but the two JSON documents, which have kinds of their own.
# Columns that are no field of a case but a choice for the row: how its subject is matched
# (`--subject` for one row).
ROW_CHOICES = ("subject_match",)
CASE_FIELDS = tuple(name for name in case_fields.IMPORTABLE if name not in ("data", "registry_data")) + ROW_CHOICES
ALIASES = {"subject_country": "country", "subject_entity_type": "entity_type", "tag": "tags"}
# Columns of `casectl list`/`export --fields` that the database sets itself: read, ignored, reported.
RESERVED = case_fields.RESERVED
# Fields whose cells are compared and stored without surrounding blanks: all but a name.
_STRIPPED = frozenset(CASE_FIELDS) - {"subject_name"}
# What --update may change on an existing case.
UPDATABLE = ("status", "priority", "assignee", "team", "tags", "data", "registry_data")

# Column kinds.
_CASE, _DATA, _REGISTRY, _DATA_JSON, _REGISTRY_JSON = range(5)


# --- the mapping file ---------------------------------------------------------


@dataclass
class ColumnSpec:
    to: str | None  # None: ignore the column
    convert: str | None = None
    format: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    separator: str = ";"


@dataclass
class Mapping:
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    unmapped: str = "data"  # data | ignore | error
    required: tuple[str, ...] = ()
    workflow: str | None = None


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file against schemas/import-mapping.schema.json."""
    import jsonschema

    p = Path(path)
    if p.is_dir():
        raise InvalidInput(f"--map {p}: is a directory, not a mapping file")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"--map {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"--map {p}: cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise InvalidInput(f"--map {p}: not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
    validator = jsonschema.Draft202012Validator(workflow_service.load_schema("import-mapping.schema.json"))
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        raise InvalidInput(
            f"--map {p}: {len(errors)} problem(s) with the mapping",
            details=[f"{e.json_path}: {e.message}" for e in errors],
        )
    columns = {}
    for name, spec in doc.get("columns", {}).items():
        if spec is None or isinstance(spec, str):
            columns[name] = ColumnSpec(to=spec)
        else:
            columns[name] = ColumnSpec(
                to=spec.get("to", name) if not spec.get("ignore") else None,
                convert=spec.get("convert"),
                format=spec.get("format"),
                values=dict(spec.get("values", {})),
                separator=spec.get("separator", ";"),
            )
    return Mapping(
        columns=columns,
        defaults=dict(doc.get("defaults", {})),
        unmapped=doc.get("unmapped", "data"),
        required=tuple(doc.get("required", ())),
        workflow=doc.get("workflow"),
    )


_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def _shown(v: str, width: int = 40) -> str:
    """A cell as an error message quotes it: a long one cut short."""
    return v if len(v) <= width else f"{v[:width]}... ({len(v)} characters)"


def _json(v: str) -> Any:
    """A cell's JSON value (raises ValueError with a reason): every number in it finite, and
    none longer than Python reads (4300 digits)."""
    try:
        value = json.loads(v)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at character {e.pos})") from None
    except ValueError:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError("a number in it has more than 4300 digits; give it as text") from None
    except RecursionError:
        raise ValueError("nested too deeply (JSON more than ~900 levels deep); flatten it") from None
    path = validate.non_finite(value)
    if path is not None:
        raise ValueError(f"{path or 'the value'} {validate.NOT_FINITE}")
    return value


def _converter(spec: ColumnSpec) -> Callable[[str], Any] | None:
    """The function that turns a cell into its value (raises ValueError with a reason). A cell's
    formula escape is CSV, like its quotes: conversions see the value without it."""
    kind, values = spec.convert, spec.values

    def base(v: str) -> Any:
        v = csv_unescape(v)
        if kind is None:
            return v
        if kind == "strip":
            return v.strip()
        if kind == "upper":
            return v.strip().upper()
        if kind == "lower":
            return v.strip().lower()
        if kind == "title":
            return v.strip().title()
        if kind == "date":
            fmt = spec.format or "%Y-%m-%d"
            try:
                return datetime.strptime(v.strip(), fmt).date().isoformat()
            except ValueError:
                raise ValueError(f"'{v}' is not a date in the format {fmt}") from None
        if kind == "int":
            try:
                return int(v.strip())
            except ValueError:
                if len(v.strip()) > 4300 and v.strip().lstrip("+-").isdigit():
                    raise ValueError(f"'{_shown(v)}' has more than 4300 digits; give it as text") from None
                raise ValueError(f"'{_shown(v)}' is not a whole number") from None
        if kind == "number":
            try:
                f = float(v.strip())
            except ValueError:
                raise ValueError(f"'{_shown(v)}' is not a number") from None
            if not math.isfinite(f):
                raise ValueError(f"'{_shown(v)}' {validate.NOT_FINITE}")
            return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
        if kind == "bool":
            low = v.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(f"'{v}' is not true/false (yes/no, 1/0)")
        if kind == "json":
            return _json(v)
        if kind == "split":
            return [p.strip() for p in v.split(spec.separator) if p.strip()]
        raise ValueError(f"unknown conversion '{kind}'")  # the schema forbids this

    if not values:
        return base if kind is not None else None

    def mapped(v: str) -> Any:
        key = csv_unescape(v).strip()
        return values[key] if key in values else base(v)

    return mapped


# --- reading the file ---------------------------------------------------------


@dataclass
class Source:
    """The file to import: a path to read (stdin is spooled to a temporary file first, named so
    that the next run removes it if this one is killed: casectl.files.private_temp)."""

    label: str  # as the user named it, for messages and the event
    path: Path
    sha256: str
    size: int
    spooled: bool = False

    def cleanup(self) -> None:
        if self.spooled:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def open_source(name: str, stdin: IO[bytes] | None = None) -> Source:
    """Check the file, hash it (the event names its sha256) and say if it is no CSV at all."""
    h = hashlib.sha256()
    if name == "-":
        if stdin is None:
            raise UsageError("reading stdin needs a stream")
        fd, tmp = files.private_temp(name="stdin", suffix=".csv")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stdin.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            what = describe(e) if isinstance(e, OSError) else None
            if what is None:
                raise
            raise EnvironmentProblem(f"<stdin>: cannot keep a copy of it to read ({tmp}): {what}") from None
        src = Source("<stdin>", Path(tmp), h.hexdigest(), size, spooled=True)
    else:
        p = Path(name)
        if p.is_dir():
            raise InvalidInput(f"{name}: is a directory, not a CSV file")
        if not p.exists():
            raise NotFound(f"{name}: no such file")
        size = 0
        try:
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
        except OSError as e:
            raise InvalidInput(f"{name}: cannot read it ({e.strerror or e})") from None
        src = Source(name, p, h.hexdigest(), size)
    with open(src.path, "rb") as f:
        head = f.read(8192)
    nul = head.find(b"\x00")
    if nul >= 0:  # (one further on is found as the rows are read)
        src.cleanup()
        before = head[:nul]
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        raise InvalidInput(
            f"{src.label}:{line}: looks like a binary file (it holds a NUL byte), not CSV text; nothing was imported"
        )
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        src.cleanup()
        raise InvalidInput(f"{src.label}: is empty; expected a header line naming the columns (at least ref)")
    return src


def _open_quote_line(lines: Iterable[str], start: int) -> int:
    """The line where the record that begins on line `start` opens the quoted field that never
    closes (csv says only that the data ended inside one). A field is quoted when its first
    character is a quote; inside it, a doubled quote stands for one."""
    quoted, opened = False, start
    for n, line in enumerate(lines, 1):
        if n < start:
            continue
        i = 0
        while True:
            if quoted:
                j = line.find('"', i)
                if j < 0:
                    break  # the field goes on into the next line
                if line.startswith('"', j + 1):
                    i = j + 2
                    continue
                quoted, i = False, j + 1
            elif line.startswith('"', i):
                quoted, opened, i = True, n, i + 1
            else:
                j = line.find(",", i)
                if j < 0:
                    break
                i = j + 1
    return opened


def _encoding(name: str | None) -> str:
    if not name:
        return "utf-8-sig"
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise UsageError(f"--encoding: unknown encoding '{name}' (try utf-8, latin-1, cp1252, utf-16)") from None
    if not getattr(info, "_is_text_encoding", True) or info.name == "undefined":
        # rot13, base64, zlib...: codecs from bytes to bytes (or none at all), not text encodings
        raise UsageError(f"--encoding: '{name}' is not a text encoding (try utf-8, latin-1, cp1252)")
    return "utf-8-sig" if info.name == "utf-8" else info.name


# --- the header -----------------------------------------------------------------


@dataclass
class Column:
    index: int
    name: str  # as in the file
    kind: int
    key: Any  # a case field name, or a data path (tuple)
    convert: Callable[[str], Any] | None


@dataclass
class Plan:
    columns: list[Column]
    ignored: list[str]
    width: int
    field_columns: dict[str, str]  # field -> the column it came from (for error messages)
    defaults: list[tuple[int, Any, Any]]

    def __post_init__(self) -> None:
        # What parse() reads for each column, unpacked once. Plain cells (no conversion) of case
        # fields, top-level data keys and two-level data paths have loops of their own; every
        # other column goes through `steps`, in column order (so its errors come in that order).
        # A column fills its own target, never one another fills (plan_columns refuses that), so
        # the order of the loops does not change the result.
        self.case_cells: list[tuple[int, str, bool]] = []  # index, field, compared without blanks
        self.data_leaves: list[tuple[int, str]] = []  # index, key
        self.data_pairs: list[tuple[int, str, str]] = []  # index, key, key inside it
        self.steps = []  # column, index, kind, key, convert, strip, leaf (a top-level key)
        for c in self.columns:
            if c.convert is None and c.kind == _CASE:
                self.case_cells.append((c.index, c.key, c.key in _STRIPPED))
            elif c.convert is None and c.kind == _DATA and len(c.key) == 1:
                self.data_leaves.append((c.index, c.key[0]))
            elif c.convert is None and c.kind == _DATA and len(c.key) == 2:
                self.data_pairs.append((c.index, c.key[0], c.key[1]))
            else:
                leaf = c.key[0] if c.kind in (_DATA, _REGISTRY) and len(c.key) == 1 else None
                self.steps.append((c, c.index, c.kind, c.key, c.convert, c.kind == _CASE and c.key in _STRIPPED, leaf))


def _target(name: str) -> tuple[int, Any] | None:
    """What a (mapped) header name fills: (kind, key); None for reserved columns."""
    low = name.strip().lower()
    low = ALIASES.get(low, low)
    if low in CASE_FIELDS:
        return _CASE, low
    if low in RESERVED:
        return None
    if low == "data":
        return _DATA_JSON, None
    if low == "registry_data":
        return _REGISTRY_JSON, None
    parts = tuple(name.strip().split("."))
    kind = _DATA
    if parts[0] in ("data", "registry_data") and len(parts) > 1:
        kind = _DATA if parts[0] == "data" else _REGISTRY
        parts = parts[1:]
    if any(not p for p in parts):
        raise ValueError(f"'{name}' is not a field name or a dotted path like company.reg_no")
    return kind, parts


def plan_columns(header: list[str], label: str, mapping: Mapping | None) -> Plan:
    errors: list[str] = []
    columns: list[Column] = []
    ignored: list[str] = []
    seen: dict[Any, str] = {}
    names_seen: set[str] = set()
    field_columns: dict[str, str] = {}
    for i, raw in enumerate(header):
        name = csv_unescape(raw).strip()
        if not name:
            errors.append(f"{label}:1: column {i + 1} has no name; every column needs a header")
            continue
        if name in names_seen:
            errors.append(f"{label}:1: column '{name}' appears twice in the header")
            continue
        names_seen.add(name)
        spec = mapping.columns.get(name) if mapping else None
        if spec is not None and spec.to is None:
            ignored.append(name)
            continue
        target_name = spec.to if spec is not None and spec.to is not None else name
        try:
            target = _target(target_name)
        except ValueError as e:
            errors.append(f"{label}:1: column '{name}': {e}")
            continue
        if target is None:
            ignored.append(name)
            continue
        kind, key = target
        if mapping and spec is None and kind not in (_CASE,) and mapping.unmapped != "data":
            if mapping.unmapped == "ignore":
                ignored.append(name)
                continue
            errors.append(f'{label}:1: column \'{name}\' is not in the mapping (it says "unmapped": "error")')
            continue
        ident = (kind, key)
        if ident in seen:
            errors.append(
                f"{label}:1: columns '{seen[ident]}' and '{name}' both fill "
                f"{key if kind == _CASE else _describe(kind, key)}"
            )
            continue
        seen[ident] = name
        convert = _converter(spec) if spec is not None else None
        columns.append(Column(i, name, kind, key, convert))
        if kind == _CASE:
            field_columns[key] = name
        else:
            field_columns.setdefault(_describe(kind, key), name)
    # A value and a path below it ("company" and "company.reg_no") cannot both be set.
    paths = {(kind, key): name for (kind, key), name in seen.items() if kind in (_DATA, _REGISTRY)}
    for (kind, key), name in paths.items():
        for n in range(1, len(key)):
            other = paths.get((kind, key[:n]))
            if other:
                errors.append(f"{label}:1: column '{other}' is a value, but '{name}' puts a field inside it")
    if errors:
        raise InvalidInput(f"{label}: the header has {len(errors)} problem(s); nothing was imported", details=errors)
    defaults = []
    for key, value in (mapping.defaults if mapping else {}).items():
        try:
            target = _target(key)
        except ValueError as e:
            raise InvalidInput(f"mapping default '{key}': {e}") from None
        if target is None:
            raise InvalidInput(f"mapping default '{key}': the database sets {key} itself")
        defaults.append((target[0], target[1], value))
        if target[0] == _CASE:
            field_columns.setdefault(target[1], f"{key} (mapping default)")
    return Plan(columns, ignored, len(header), field_columns, defaults)


def _describe(kind: int, key: Any) -> str:
    if kind == _DATA:
        return "data." + ".".join(key)
    if kind == _REGISTRY:
        return "registry_data." + ".".join(key)
    return "data" if kind == _DATA_JSON else "registry_data"


# --- one row ----------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    line: int
    cells: list[str]
    nc: NewCase | None = None
    wf: Workflow | None = None
    errors: list[str] = field(default_factory=list)  # "column COL: reason" or a row-level reason
    has: frozenset = frozenset()  # fields the row gives a value for (for --update)
    case_id: int | None = None  # the existing case with this ref


@dataclass
class ImportResult:
    file: str
    sha256: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    # Of the invalid rows, those the workflow's rules refuse (a creation status it does not allow).
    refused: int = 0
    dry_run: bool = False
    rejects: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the first MAX_ERRORS_SHOWN
    created_ids: tuple[int, int] | None = None  # first and last new case number

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "created_ids"}


class _Importer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        src: Source,
        *,
        workflow: str | None,
        mapping: Mapping | None,
        actor: str,
        now: datetime,
        encoding: str,
        dry_run: bool,
        skip_invalid: bool,
        update: bool,
        rejects: IO[str] | None,
        progress: Callable[[int, int, int], None] | None,
        subject_match: str | None = None,
    ):
        self.conn, self.src, self.mapping, self.encoding = conn, src, mapping, encoding
        self.default_workflow = workflow or (mapping.workflow if mapping else None)
        self.actor, self.now, self.at = actor, now, iso(now)
        self.dry_run, self.skip_invalid, self.update = dry_run, skip_invalid, update
        self.rejects_out = rejects
        self.rejects: Any = None
        self.progress = progress
        self.subject_match = subject_match
        self.result = ImportResult(src.label, src.sha256, dry_run=dry_run)
        self.workflows: dict[str, Workflow | str] = {}  # name -> workflow, or why it is unknown
        self.status_column = "status"
        self.failing = False  # atomic mode has seen an invalid row: validate on, write nothing more
        self.countries = validate.country_codes()
        self.event_extra = {"file": src.label, "sha256": src.sha256}
        self.verdicts: dict[tuple[str, int, str | None], rules.Verdict] = {}

    # -- rows in ---------------------------------------------------------------

    def workflow(self, name: str | None) -> Workflow | str:
        if not name:
            return "empty, and no --workflow was given"
        wf = self.workflows.get(name)
        if wf is None:
            try:
                wf = workflow_service.get(self.conn, name)
                workflow_service.ensure_recorded(self.conn, wf, now=self.now, actor=self.actor)
            except NotFound as e:
                wf = e.message
            self.workflows[name] = wf
        return wf

    def parse(self, line: int, cells: list[str], plan: Plan) -> Row:
        row = Row(line, cells)
        if len(cells) != plan.width:
            row.errors.append(
                f"has {len(cells)} fields but the header has {plan.width}"
                + (" (an unquoted comma or quote?)" if len(cells) > plan.width else "")
            )
            return row
        fields: dict[str, Any] = {}
        data: dict[str, Any] = {}
        registry: dict[str, Any] = {}
        data_base = registry_base = None
        has: set[str] = set()
        for kind, key, value in plan.defaults:  # the columns below override them
            if kind == _CASE:
                fields[key] = value
            else:
                set_path(data if kind == _DATA else registry, key, value)
        for index, key, strip in plan.case_cells:
            v = cells[index]
            if v:
                if v[0] == "'":
                    v = csv_unescape(v)
                if strip:
                    v = v.strip()
                    if not v:
                        continue
                fields[key] = v
                has.add(key)
        if plan.data_leaves or plan.data_pairs:
            filled = False
            for index, key in plan.data_leaves:
                v = cells[index]
                if v:
                    data[key] = csv_unescape(v) if v[0] == "'" else v
                    filled = True
            for index, key, inner_key in plan.data_pairs:
                v = cells[index]
                if v:
                    inner = data.get(key)
                    if not isinstance(inner, dict):  # as set_path: a value in the way becomes an object
                        inner = data[key] = {}
                    inner[inner_key] = csv_unescape(v) if v[0] == "'" else v
                    filled = True
            if filled:
                has.add("data")
        for col, index, kind, key, convert, strip, leaf in plan.steps:
            v = cells[index]
            if not v:
                continue
            if convert is not None:
                try:
                    v = convert(v)
                except ValueError as e:
                    row.errors.append(f"column {col.name}: {e}")
                    continue
                if v == "" or v is None:
                    continue
            elif v[0] == "'":
                v = csv_unescape(v)
            if kind == _CASE:
                if strip and isinstance(v, str):
                    v = v.strip()
                    if not v:
                        continue
                fields[key] = v
                has.add(key)
            elif kind == _DATA:
                if leaf is not None:
                    data[leaf] = v
                else:
                    set_path(data, key, v)
                has.add("data")
            elif kind == _REGISTRY:
                if leaf is not None:
                    registry[leaf] = v
                else:
                    set_path(registry, key, v)
                has.add("registry_data")
            else:
                if isinstance(v, str):
                    try:
                        v = _json(v)
                    except ValueError as e:
                        row.errors.append(f"column {col.name}: {e}")
                        continue
                if not isinstance(v, dict):
                    row.errors.append(f"column {col.name}: must be a JSON object, got {type(v).__name__}")
                    continue
                if kind == _DATA_JSON:
                    data_base = v
                    has.add("data")
                else:
                    registry_base = v
                    has.add("registry_data")
        if data_base is not None:
            data = deep_merge(data_base, data) if data else data_base
        if registry_base is not None:
            registry = deep_merge(registry_base, registry) if registry else registry_base
        row.has = frozenset(has)
        if row.errors:
            return row

        ref = _text(fields.get("ref"))  # a mapping may convert it (int): a ref is text
        if not ref:
            row.errors.append(
                f"column {plan.field_columns.get('ref', 'ref')}: required (the case's external "
                "reference, the key that makes a re-import safe)"
            )
        for name in self.mapping.required if self.mapping else ():
            target = _target(name)
            present = (target[1] in fields) if target and target[0] == _CASE else bool(data or registry)
            if not present:
                row.errors.append(f"column {plan.field_columns.get(name, name)}: required by the mapping")
        wf = self.workflow(fields.get("workflow") or self.default_workflow)
        if isinstance(wf, str):
            row.errors.append(f"column {plan.field_columns.get('workflow', 'workflow')}: {wf}")
            return row
        entity_type = fields.get("entity_type")
        if entity_type is not None and entity_type not in ("person", "company"):
            row.errors.append(
                f"column {plan.field_columns.get('entity_type')}: '{entity_type}' is not person or company"
            )
        tags = fields.get("tags")
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        country = fields.get("country")
        match = _text(fields.get("subject_match")) or self.subject_match
        if match is not None and match not in lifecycle.SUBJECT_MATCHES:
            row.errors.append(
                f"column {plan.field_columns.get('subject_match')}: '{match}' is not one of {', '.join(lifecycle.SUBJECT_MATCHES)}"
            )
        nc = NewCase(
            workflow=wf.name,
            ref=ref,
            subject_name=_text(fields.get("subject_name")),
            subject_email=fields.get("subject_email"),
            subject_dob=fields.get("subject_dob"),
            subject_ref=fields.get("subject_ref"),
            country=country.upper() if isinstance(country, str) else country,
            entity_type=entity_type,
            data=data,
            registry_data=registry,
            assignee=_text(fields.get("assignee")),
            team=_text(fields.get("team")),
            tags=list(tags or []),
            priority=fields.get("priority") or "normal",
            status=fields.get("status"),
            origin="import",
            subject_match=match,
        )
        for problem in validate.validate_new_case(nc, wf, now=self.now):
            fld, _, reason = problem.partition(": ")
            fld = {"tag": "tags"}.get(fld, fld)
            row.errors.append(f"column {plan.field_columns.get(fld, fld)}: {reason}")
        row.nc, row.wf = nc, wf
        return row

    # -- a batch -------------------------------------------------------------------

    def error_line(self, row: Row, problem: str) -> str:
        return f"{self.src.label}:{row.line}: {problem}"

    def reject(self, row: Row) -> None:
        self.result.invalid += 1
        for problem in row.errors:
            if len(self.result.errors) < MAX_ERRORS_SHOWN:
                self.result.errors.append(self.error_line(row, problem))
        if self.skip_invalid:
            if self.rejects is not None:
                self.rejects.writerow(_rejected(row.cells + ["; ".join(row.errors)]))
        else:
            self.failing = True

    def flush(self, batch: list[Row]) -> None:
        refs = [r.nc.ref for r in batch if r.nc is not None and r.nc.ref is not None]
        seen = bulk.seen_refs(self.conn, refs) if refs else {}
        here: dict[str, int] = {}
        for r in batch:
            if r.nc is None or r.nc.ref is None:
                continue
            first = seen.get(r.nc.ref) or here.get(r.nc.ref)
            if first is not None:
                r.errors.append(f"column ref: '{r.nc.ref}' is a duplicate of line {first}")
            else:
                here[r.nc.ref] = r.line
        if here:
            bulk.log_refs(self.conn, list(here.items()))
        existing = bulk.case_ids_for_refs(self.conn, list(here)) if here else {}
        new: list[Row] = []
        old: list[Row] = []
        for r in batch:
            if r.errors or r.nc is None:
                self.reject(r)
                continue
            r.case_id = existing.get(r.nc.ref) if r.nc.ref is not None else None
            if r.case_id is None and r.wf is not None:
                verdict = self.creatable(r.wf, r.nc.status)
                if not verdict.allowed:
                    r.errors.append(f"column {self.status_column}: {verdict.reason}")
                    self.result.refused += 1
                    self.reject(r)
                    continue
            (old if r.case_id is not None else new).append(r)
        if self.failing:
            return
        if new:
            self.create(new)
        for r in old:
            if not self.update:
                self.result.unchanged += 1
                continue
            self.update_case(r)
            if r.errors:
                self.reject(r)

    # -- creating -------------------------------------------------------------------

    def creatable(self, wf: Workflow, status: str | None) -> rules.Verdict:
        """rules.check_create, asked once per workflow and status of the file."""
        key = (wf.name, wf.version, status)
        verdict = self.verdicts.get(key)
        if verdict is None:
            verdict = self.verdicts[key] = rules.check_create(wf, status)
        return verdict

    def create(self, rows: list[Row]) -> None:
        """The kernel's batch creation (lifecycle.insert_cases), for rows already checked one by one."""
        ids = lifecycle.insert_cases(
            self.conn,
            [r.nc for r in rows if r.nc is not None],
            actor=self.actor,
            now=self.now,
            event_data=self.event_extra,
            each_event_data=[{"line": r.line} for r in rows],
            checked=True,
        )
        self.result.created += len(ids)
        first = self.result.created_ids[0] if self.result.created_ids else ids[0]
        self.result.created_ids = (first, ids[-1])

    # -- updating -------------------------------------------------------------------

    def update_case(self, r: Row) -> None:
        """--update: apply the row's values to the existing case, with one event naming the changes."""
        conn, nc = self.conn, r.nc
        assert nc is not None and r.case_id is not None  # flush sends only parsed rows of existing cases
        case = case_store.fetch(conn, r.case_id)
        if case["workflow"] != nc.workflow and "workflow" in r.has:
            r.errors.append(
                f"column workflow: case {nc.ref} is in workflow {case['workflow']}, not {nc.workflow}; "
                "a case cannot change workflow"
            )
            return
        wf = lifecycle.workflow_of(conn, case)
        changes: dict[str, Any] = {}
        shown: dict[str, list[Any]] = {}
        for name in ("priority", "assignee", "team"):
            value = getattr(nc, name)
            if name in r.has and value != case[name]:
                changes[name] = value
                shown[name] = [case[name], value]
        for name in ("data", "registry_data"):
            if name in r.has:
                merged = deep_merge(case[name], getattr(nc, name))
                if merged != case[name]:
                    changes[name] = merged
                    shown[name] = [case[name], merged]
        add = remove = []
        if "tags" in r.has:
            wanted = sorted(set(nc.tags))
            add = [t for t in wanted if t not in case["tags"]]
            remove = [t for t in case["tags"] if t not in wanted]
            if add or remove:
                shown["tags"] = [case["tags"], wanted]
        to_status = nc.status if "status" in r.has and nc.status != case["status"] else None
        verdict = None
        if to_status is not None:
            # The same door as `casectl status`: the rules' guards, four-eyes and reasons apply.
            wf, verdict = lifecycle.status_verdict(conn, case, to_status, actor=self.actor, reason=None)
            if not verdict.allowed:
                r.errors.append(
                    f"column {self.status_column}: cannot move case {nc.ref} from {case['status']} to {to_status}: "
                    f"{verdict.reason}"
                )
                if not verdict.invalid:
                    self.result.refused += 1
                return
        if not shown and to_status is None:
            self.result.unchanged += 1
            return
        version = case["version"]
        if shown:
            version = case_store.update(conn, case["id"], version, {**changes, "last_editor": self.actor}, at=self.at)
            if add or remove:
                case_store.set_tags(conn, case["id"], add=add, remove=remove)
            event_store.append(
                conn,
                case["id"],
                at=self.at,
                actor=self.actor,
                kind="updated",
                data={"changes": shown, "origin": "import", "line": r.line, **self.event_extra},
            )
        if to_status is not None and verdict is not None:
            case = case_store.fetch(conn, case["id"])
            lifecycle.transition(
                conn,
                case,
                wf,
                verdict,
                actor=self.actor,
                now=self.now,
                kind="status",
                reason=f"import of {self.src.label}",
                data={"origin": "import", "line": r.line, **self.event_extra},
            )
        self.result.updated += 1

    # -- the whole file ---------------------------------------------------------------

    def rows(self, text: IO[str]) -> Iterator[tuple[int, list[str]]]:
        # strict: a quote that is never closed is an error, not a field that swallows the rest of the file
        reader = csv.reader(self._text_lines(text), strict=True)
        line = 1
        try:
            for cells in reader:
                start, line = line, reader.line_num + 1
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # blank line
                yield start, cells
        except UnicodeDecodeError as e:
            raise self._decode_error(e, line) from None
        except csv.Error as e:
            msg = str(e)
            if "unexpected end of data" in msg:
                opened = _open_quote_line(self._reread(), line)
                raise InvalidInput(
                    f"{self.src.label}:{opened}: a quoted field begins here and its closing quote never comes "
                    '(a value holding a " must be quoted whole, with the quote doubled: ""); nothing was imported'
                ) from None
            if "expected after" in msg:
                msg = 'a quoted field goes on after its closing quote; quote the whole value, doubling each " in it'
            if "field larger than field limit" in msg:
                msg = f"a field is longer than {FIELD_LIMIT // (1024 * 1024)} MiB (or a quote is never closed)"
            raise InvalidInput(f"{self.src.label}:{line}: not readable as CSV ({msg}); nothing was imported") from None

    def _text_lines(self, text: IO[str]) -> Iterator[str]:
        """The file's lines (as csv counts them), refused at the first NUL character: binary data."""
        for n, line in enumerate(text, 1):
            if "\x00" in line:
                raise InvalidInput(
                    f"{self.src.label}:{n}: holds a NUL byte, so it is binary data and not CSV text; nothing was imported"
                )
            yield line

    def _reread(self) -> Iterator[str]:
        """The file's lines once more, from the start (to explain an error)."""
        with open(self.src.path, encoding=self.encoding, errors="replace", newline="") as f:
            yield from f

    def _decode_error(self, e: UnicodeDecodeError, line: int) -> InvalidInput:
        bad = e.object[e.start : e.start + 1].hex() if isinstance(e.object, bytes) else "?"
        return InvalidInput(
            f"{self.src.label}: near line {line}: not {e.encoding.replace('-sig', '')} text (byte 0x{bad}); "
            "give the file's encoding with --encoding, e.g. --encoding latin-1 or --encoding cp1252"
        )

    def run(self, text: IO[str], raw: IO[bytes]) -> ImportResult:
        rows = self.rows(text)
        try:
            _, header = next(rows)
        except StopIteration:
            raise InvalidInput(
                f"{self.src.label}: is empty; expected a header line naming the columns (at least ref)"
            ) from None
        plan = plan_columns(header, self.src.label, self.mapping)
        self.result.ignored_columns = plan.ignored
        self.status_column = plan.field_columns.get("status", "status")
        if "ref" not in plan.field_columns:
            shown = ", ".join(h.strip() for h in header[:8]) + (", ..." if len(header) > 8 else "")
            raise InvalidInput(
                f"{self.src.label}:1: no ref column (the header is: {shown}); each row needs its "
                "external reference, the key that makes a re-import safe (rename a column with "
                "--map)"
            )
        if "workflow" not in plan.field_columns and not self.default_workflow:
            raise UsageError(
                'which workflow? give --workflow NAME (or a workflow column, or "workflow" in the mapping)'
            )
        if self.default_workflow:
            wf = self.workflow(self.default_workflow)
            if isinstance(wf, str):
                raise NotFound(wf)
        if self.rejects_out is not None:
            self.rejects = csvcells.writer(self.rejects_out)
            self.rejects.writerow(_rejected(header + ["error"]))
        bulk.start_ref_log(self.conn)
        batch: list[Row] = []
        with lifecycle.creation_run(self.conn):  # the batches' search rows: once, at the end
            for line, cells in rows:
                batch.append(self.parse(line, cells, plan))
                if len(batch) >= BATCH:
                    self.result.rows += len(batch)
                    self.flush(batch)
                    batch = []
                    if self.progress:
                        self.progress(raw.tell(), self.src.size, self.result.rows)
            if batch:
                self.result.rows += len(batch)
                self.flush(batch)
        if self.progress:
            self.progress(self.src.size, self.src.size, self.result.rows)
        bulk.end_ref_log(self.conn)
        return self.result


def import_csv(
    conn: sqlite3.Connection,
    name: str,
    *,
    workflow: str | None,
    actor: str,
    now: datetime,
    mapping: str | Path | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    update: bool = False,
    encoding: str | None = None,
    rejects: str | Path | None = None,
    stdin: IO[bytes] | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    subject_match: str | None = None,
) -> ImportResult:
    """Import a CSV file in one transaction. Raises InvalidInput (nothing written) on any bad row,
    unless `skip_invalid`, which imports the good rows and writes the bad ones to `rejects`."""
    enc = _encoding(encoding)
    plan_mapping = load_mapping(mapping) if mapping else None
    if rejects is not None and Path(rejects).is_dir():
        raise InvalidInput(f"--rejects {rejects}: is a directory; give a file name")
    # Written like every output (casectl.files): it takes its name once the import has committed.
    target = files.check_target(rejects, "--rejects") if rejects is not None and skip_invalid and not dry_run else None
    csv.field_size_limit(FIELD_LIMIT)
    src = open_source(name, stdin)
    try:
        with (
            open(src.path, "rb") as raw,
            files.atomic_output(target, binary=False) if target is not None else contextlib.nullcontext() as out,
        ):
            text = io.TextIOWrapper(raw, encoding=enc, errors="strict", newline="")
            importer = _Importer(
                conn,
                src,
                workflow=workflow,
                mapping=plan_mapping,
                actor=actor,
                now=now,
                encoding=enc,
                dry_run=dry_run,
                skip_invalid=skip_invalid,
                update=update,
                rejects=out,
                progress=progress,
                subject_match=subject_match,
            )
            # The rows, cases and events are many short-lived objects without cycles: reference
            # counting frees each one, and the cycle collector would only walk them (and every
            # module) over and over. It is off for the import.
            collecting = gc.isenabled()
            gc.disable()
            try:
                with write(conn):
                    result = importer.run(text, raw)
                    if result.invalid and not skip_invalid:
                        n = result.invalid
                        # Every bad row is one the rules refuse (not a malformed one): exit 4, as for `create`.
                        error = NotAllowed if result.refused == n else InvalidInput
                        raise error(
                            f"{src.label}: {n} invalid row{'s' if n != 1 else ''} of {result.rows}; nothing was imported"
                            + (f" (the first {MAX_ERRORS_SHOWN} below)" if n > MAX_ERRORS_SHOWN else "")
                            + ". Fix them, or import the valid rows with --skip-invalid --rejects FILE",
                            details=result.errors,
                        )
                    if dry_run:
                        conn.execute("ROLLBACK")
            finally:
                if collecting:
                    gc.enable()
        if target is not None:
            result.rejects = str(rejects)
        return result
    finally:
        src.cleanup()


def _rejected(cells: list[str]) -> list[str]:
    """A rejects file's cells, formula-escaped like an export's. A cell the file had escaped
    already is escaped once, as its value: importing the rejects reads what the file said."""
    escape, unescape = csvcells.escape, csv_unescape
    return [escape(unescape(c)) for c in cells]


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)


__all__ = ["import_csv", "load_mapping", "ImportResult", "Mapping", "open_source"]
