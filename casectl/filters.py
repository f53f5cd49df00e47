"""Which cases a command is about: one filter shared by list, export, report,
stats, digest, take and saved views, so their numbers always agree.

Pure values; the store turns a CaseFilter into SQL.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import UsageError

# Sort keys a user may name, and the column each stands for.
SORT_FIELDS = {
    "id": "id",
    "ref": "ref",
    "workflow": "workflow",
    "status": "status",
    "assignee": "assignee",
    "team": "team",
    "priority": "priority",
    "created": "created_at",
    "created_at": "created_at",
    "updated": "updated_at",
    "updated_at": "updated_at",
    "due": "due_at",
    "due_at": "due_at",
    "decided": "decided_at",
    "decided_at": "decided_at",
}

_PATH_PART = re.compile(r"^[A-Za-z0-9_\-]+$")
# KEY, then the first operator: the key's characters hold none, so a value may contain any.
_WHERE = re.compile(r"^\s*([^=!<>~]*?)\s*(!=|<=|>=|=|<|>|~)(.*)$", re.S)
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")
_NUMBER = re.compile(r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$")


@dataclass(frozen=True)
class WhereClause:
    """`--where KEY<OP>VALUE`: `subject.FIELD`, or a dotted path into the case data.

    `=` equal (as text); `!=` not equal, or missing; `<` `<=` `>` `>=` compare as numbers when the
    value is a number (a data field holding text never matches then), else as text (ISO dates
    compare rightly); `~` contains, ignoring the case of ASCII letters.
    """

    scope: str  # "subject" | "data" | "registry_data"
    path: tuple[str, ...]
    value: str
    op: str = "="

    @property
    def numeric(self) -> bool:
        return self.op in ("<", "<=", ">", ">=") and _NUMBER.match(self.value) is not None

    @classmethod
    def parse(cls, text: str) -> WhereClause:
        m = _WHERE.match(text)
        if m is None or not m.group(1):
            raise UsageError(
                f"--where takes KEY=VALUE (or KEY!=, <, <=, >, >=, ~ VALUE), got '{text}'; e.g. data.risk=high"
            )
        key, op, value = m.group(1), m.group(2), m.group(3)
        parts = tuple(key.split("."))
        scope = "data"
        if parts[0] in ("subject", "data", "registry_data") and len(parts) > 1:
            scope, parts = parts[0], parts[1:]
        for p in parts:
            if not _PATH_PART.match(p):
                raise UsageError(f"--where key '{key}' has an invalid part '{p}' (letters, digits, _ and - only)")
        return cls(scope, parts, value, op)

    def __str__(self) -> str:
        prefix = "" if self.scope == "data" else f"{self.scope}."
        return f"{prefix}{'.'.join(self.path)}{self.op}{self.value}"


@dataclass(frozen=True)
class CaseFilter:
    statuses: tuple[str, ...] = ()
    workflow: str | None = None
    assignee: str | None = None
    team: str | None = None
    tags: tuple[str, ...] = ()
    country: str | None = None
    priority: str | None = None
    created_since: str | None = None
    created_until: str | None = None
    where: tuple[WhereClause, ...] = ()
    parent: int | None = None
    subject_id: int | None = None
    unassigned: bool = False
    open_only: bool = False
    closed_only: bool = False
    overdue_at: str | None = None  # cases whose due_at is before this time and still open
    due_before: str | None = None
    # In their status since no later than this time (`--in-status-for`).
    in_status_before: str | None = None
    decided_since: str | None = None
    decided_until: str | None = None
    # Decided after the SLA's due time (closed cases only).
    sla_breached: bool = False
    ids: tuple[int, ...] = ()
    # (workflow, status) pairs, any of them: what `--category` stands for.
    workflow_statuses: tuple[tuple[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self) -> list[str]:
        """The filter in words, for report headers and `views list`."""
        out: list[str] = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v in (None, (), False, {}):
                continue
            if f.name == "where":
                out.extend(f"where {w}" for w in v)
            elif isinstance(v, tuple):
                out.append(f"{f.name}: {', '.join(str(x) for x in v)}")
            elif v is True:
                out.append(f.name.replace("_", " "))
            else:
                out.append(f"{f.name}: {v}")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["where"] = [str(w) for w in self.where]
        d.pop("extra", None)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if v not in (None, (), [], False)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseFilter:
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for k, v in d.items():
            if k not in known:
                continue
            if k == "where":
                kwargs[k] = tuple(WhereClause.parse(w) for w in v)
            elif k == "workflow_statuses":
                kwargs[k] = tuple((str(a), str(b)) for a, b in v)
            elif isinstance(v, list):
                kwargs[k] = tuple(v)
            else:
                kwargs[k] = v
        return cls(**kwargs)


def parse_sort(text: str | None) -> tuple[str, bool]:
    """`created` or `-created` -> (column, descending)."""
    if not text:
        return "id", False
    desc = text.startswith("-")
    name = text.lstrip("-+")
    col = SORT_FIELDS.get(name)
    if col is None:
        raise UsageError(f"unknown sort field '{name}'; available: {', '.join(sorted(SORT_FIELDS))}")
    return col, desc


# --- keyset cursors (`list --after CURSOR`) -------------------------------------


def encode_cursor(column: str, descending: bool, value: Any, case_id: int) -> str:
    """Where the next page starts: 'C-123' when sorted by id, else an opaque token."""
    if column == "id":
        return f"C-{case_id}"
    import base64
    import json

    raw = json.dumps([column, descending, value, case_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, column: str, descending: bool) -> tuple[Any, int]:
    """A cursor -> (sort value, id), checked against the sort it is used with."""
    import base64
    import binascii
    import json

    from .ids import parse

    n = parse("case", text)
    if n is not None:
        if column != "id":
            raise UsageError(f"--after {text}: an id cursor only works with the default sort (by id)")
        return None, n
    try:
        col, desc, value, case_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(case_id, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise UsageError(f"--after: '{text}' is not a cursor printed by `casectl list`") from None
    if (col, bool(desc)) != (column, descending):
        raise UsageError(f"--after: this cursor belongs to --sort {'-' if desc else ''}{col}; use the same --sort")
    return value, case_id
