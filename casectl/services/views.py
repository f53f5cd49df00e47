"""Saved views (seed 000's filters sidebar): named filters, plus built-in ones
for every workflow ("kyb-manual-review", "kyb-open") and for the queue
("unassigned", "overdue", "mine").

A view is stored as the CaseFilter's dict, plus a "relative" part for the
filters that depend on who asks and when (--mine, --overdue, --due-within),
so a saved "overdue" view means overdue when it is used, not when it was saved.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

from ..errors import Conflict, InvalidInput, NotAllowed, NotFound
from ..filters import CaseFilter
from ..store import views as view_store
from ..store import write
from ..timeutil import iso
from . import workflows as workflow_service

RELATIVE = ("mine", "overdue", "due_within", "in_status_for")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def builtins(conn: sqlite3.Connection | None) -> dict[str, dict[str, Any]]:
    """Built-in views by name: one per open status of each workflow, its open cases, and the queue's."""
    out: dict[str, dict[str, Any]] = {
        "unassigned": {"unassigned": True, "open_only": True},
        "overdue": {"relative": {"overdue": True}},
        "mine": {"open_only": True, "relative": {"mine": True}},
    }
    for wf, _ in workflow_service.all_latest(conn):
        out[f"{wf.name}-open"] = {"workflow": wf.name, "open_only": True}
        for status in wf.statuses:
            if not status.final:
                out[f"{wf.name}-{status.name.replace('_', '-')}"] = {"workflow": wf.name, "statuses": [status.name]}
    return out


def get(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    """The stored filters of a view (saved first, then built-in)."""
    row = view_store.get(conn, name)
    if row is not None:
        return row["filters"]
    found = builtins(conn).get(name)
    if found is None:
        names = sorted({v["name"] for v in view_store.list_(conn)} | set(builtins(conn)))
        raise NotFound(
            f"no view '{name}'; see `casectl views list` ({', '.join(names[:12])}{', ...' if len(names) > 12 else ''})"
        )
    return found


def split(filters: dict[str, Any]) -> tuple[CaseFilter, dict[str, Any]]:
    """Stored filters -> (the fixed CaseFilter, the relative option values)."""
    relative = dict(filters.get("relative") or {})
    return CaseFilter.from_dict({k: v for k, v in filters.items() if k != "relative"}), relative


def to_stored(f: CaseFilter, relative: dict[str, Any]) -> dict[str, Any]:
    d = f.to_dict()
    rel = {k: v for k, v in relative.items() if k in RELATIVE and v}
    if rel:
        d["relative"] = rel
    return d


def describe(filters: dict[str, Any]) -> str:
    f, relative = split(filters)
    parts = f.describe()
    parts += [k.replace("_", " ") if v is True else f"{k.replace('_', ' ')}: {v}" for k, v in relative.items()]
    return "; ".join(parts) or "all cases"


def list_views(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    saved = {v["name"]: v for v in view_store.list_(conn)}
    rows = [
        {
            "name": n,
            "builtin": False,
            "filters": v["filters"],
            "description": describe(v["filters"]),
            "created_at": v["created_at"],
            "created_by": v["created_by"],
        }
        for n, v in saved.items()
    ]
    rows += [
        {"name": n, "builtin": True, "filters": d, "description": describe(d), "created_at": None, "created_by": None}
        for n, d in builtins(conn).items()
        if n not in saved
    ]
    return sorted(rows, key=lambda r: (r["builtin"], r["name"]))


def add(
    conn: sqlite3.Connection, name: str, stored: dict[str, Any], *, replace: bool, actor: str, now: datetime
) -> dict[str, Any]:
    if not _NAME.match(name):
        raise InvalidInput(f"view name '{name}': use letters, digits, '.', '_' and '-' (at most 64)")
    if not stored:
        raise InvalidInput("a view needs at least one filter, e.g. --status manual_review --workflow kyb")
    with write(conn):
        if name in builtins(conn):
            raise Conflict(f"'{name}' is a built-in view; choose another name")
        if view_store.get(conn, name) is not None and not replace:
            raise Conflict(f"view '{name}' already exists; add --replace to overwrite it")
        view_store.save(conn, name, stored, at=iso(now), actor=actor)
    return {"name": name, "filters": stored, "description": describe(stored)}


def remove(conn: sqlite3.Connection, name: str) -> None:
    with write(conn):
        if view_store.delete(conn, name):
            return
        if name in builtins(conn):
            raise NotAllowed(f"'{name}' is a built-in view and cannot be removed")
        raise NotFound(f"no saved view '{name}'; see `casectl views list`")
