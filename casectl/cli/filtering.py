"""The case filter options, declared once and given to every command that
selects cases (list, search, export, report, stats, take, views add), so they
all accept the same flags and mean the same thing.

`@filter_options` works like sqlite-utils' `output_options`: Typer sees each
option below as a parameter of the command, and the command receives them all
as one visible parameter, `filters: FilterOptions`.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar, cast

from .. import ids
from ..errors import UsageError
from ..filters import CaseFilter, WhereClause
from ..services import filter_check
from ..timeutil import iso, parse_duration, parse_time
from .options import (
    Assignee,
    Category,
    Closed,
    Country,
    CreatedSince,
    CreatedUntil,
    DueWithin,
    InStatusFor,
    Mine,
    Open,
    Overdue,
    Parent,
    Priority,
    Status,
    Tag,
    Team,
    Unassigned,
    View,
    Where,
    Workflow,
)

# Parameter name -> (declaration, default), in the order `--help` lists them.
OPTIONS: dict[str, tuple[Any, Any]] = {
    "status": (Status, None),
    "category": (Category, None),
    "workflow": (Workflow, None),
    "assignee": (Assignee, None),
    "team": (Team, None),
    "tag": (Tag, None),
    "country": (Country, None),
    "priority": (Priority, None),
    "created_since": (CreatedSince, None),
    "created_until": (CreatedUntil, None),
    "where": (Where, None),
    "parent": (Parent, None),
    "open": (Open, False),
    "closed": (Closed, False),
    "mine": (Mine, False),
    "unassigned": (Unassigned, False),
    "overdue": (Overdue, False),
    "due_within": (DueWithin, None),
    "in_status_for": (InStatusFor, None),
    "view": (View, None),
}
_REPEATABLE = {"status", "tag", "where"}


@dataclass(frozen=True, kw_only=True)
class FilterOptions:
    """The filter options of one command, as given on its command line."""

    status: tuple[str, ...] = ()
    category: str | None = None
    workflow: str | None = None
    assignee: str | None = None
    team: str | None = None
    tag: tuple[str, ...] = ()
    country: str | None = None
    priority: str | None = None
    created_since: str | None = None
    created_until: str | None = None
    where: tuple[str, ...] = ()
    parent: str | None = None
    open: bool = False
    closed: bool = False
    mine: bool = False
    unassigned: bool = False
    overdue: bool = False
    due_within: str | None = None
    in_status_for: str | None = None
    view: str | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> FilterOptions:
        """From the command's parameters (Typer gives a repeatable option as a list, or None)."""
        values: dict[str, Any] = {k: tuple(v or ()) if k in _REPEATABLE else v for k, v in params.items()}
        return cls(**values)

    def given(self) -> dict[str, Any]:
        """The options that were given, by parameter name (an unset one must not undo a view's)."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) not in (None, (), False)}


F = TypeVar("F", bound=Callable[..., Any])


def filter_options(command: F) -> F:
    """Give `command` the filter options; it takes them as a keyword-only `filters: FilterOptions`."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "filters"]
    if len(own) == len(signature.parameters):
        raise TypeError(f"{command.__name__} takes no `filters` parameter")
    clash = {p.name for p in own} & OPTIONS.keys()
    if clash:
        raise TypeError(f"{command.__name__} has parameters named like filter options: {sorted(clash)}")
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=declaration)
        for name, (declaration, default) in OPTIONS.items()
    ]

    @functools.wraps(command)
    def with_filters(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, default) for name, (_, default) in OPTIONS.items()}
        return command(*args, filters=FilterOptions.from_params(given), **kwargs)

    # Typer reads the parameters from the signature (and their types from __annotations__).
    parameters = own + added
    # (mypy knows no __signature__ on functions; inspect.signature() reads it first.)
    with_filters.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_filters.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": signature.return_annotation}
    return cast(F, with_filters)


def build(values: dict[str, Any], *, actor: str, now: datetime, base: CaseFilter | None = None) -> CaseFilter:
    """Turn option values into a CaseFilter (on top of a view's filter, if any)."""
    f: dict[str, Any] = base.to_dict() if base else {}
    if base:
        f["where"] = list(base.where)
    simple = {"workflow": "workflow", "assignee": "assignee", "team": "team", "priority": "priority"}
    for opt, key in simple.items():
        if values.get(opt):
            f[key] = values[opt]
    if values.get("country"):
        f["country"] = values["country"].upper()
    if values.get("status"):
        f["statuses"] = tuple(values["status"])
    if values.get("workflow_statuses") is not None:
        f["workflow_statuses"] = values["workflow_statuses"]
    if values.get("tag"):
        f["tags"] = tuple(f.get("tags", ())) + tuple(values["tag"])
    if values.get("created_since"):
        f["created_since"] = iso(parse_time(values["created_since"], "--created-since"))
    if values.get("created_until"):
        f["created_until"] = iso(parse_time(values["created_until"], "--created-until", end_of_day=True))
    where = [w if isinstance(w, WhereClause) else WhereClause.parse(w) for w in f.get("where", ())]
    where += [WhereClause.parse(w) for w in values.get("where", ())]
    f["where"] = tuple(where)
    if values.get("parent"):
        n = ids.parse("case", values["parent"])
        if n is None:
            raise UsageError(f"--parent: '{values['parent']}' is not a case id like C-12")
        f["parent"] = n
    if values.get("open") and values.get("closed"):
        raise UsageError("--open and --closed exclude each other")
    for flag, key in (("open", "open_only"), ("closed", "closed_only"), ("unassigned", "unassigned")):
        if values.get(flag):
            f[key] = True
    if values.get("mine"):
        if values.get("unassigned"):
            raise UsageError("--mine and --unassigned exclude each other")
        f["assignee"] = actor
    if values.get("overdue"):
        f["overdue_at"] = iso(now)
    if values.get("due_within"):
        f["due_before"] = iso(now + parse_duration(values["due_within"], "--due-within"))
    if values.get("in_status_for"):
        f["in_status_before"] = iso(now - parse_duration(values["in_status_for"], "--in-status-for"))
    where_objs = f.pop("where")
    cf = CaseFilter.from_dict({k: v for k, v in f.items()})
    return CaseFilter(**{**cf.__dict__, "where": where_objs})


def _view(conn: sqlite3.Connection, name: str | None) -> tuple[CaseFilter | None, dict[str, Any]]:
    """A named view's fixed filter and its relative options (none without a name)."""
    from ..services import views as view_service

    if not name:
        return None, {}
    return view_service.split(view_service.get(conn, name))


def resolve(conn: sqlite3.Connection, filters: FilterOptions, *, actor: str, now: datetime) -> CaseFilter:
    """The filter a command was given, starting from `--view` (saved or built-in) when named."""
    filter_check.check(conn, filters.given())
    values = _with_category(conn, filters.given())
    base, relative = _view(conn, filters.view)
    return build({**relative, **values}, actor=actor, now=now, base=base)


def _with_category(conn: sqlite3.Connection, values: dict[str, Any]) -> dict[str, Any]:
    """--category as the (workflow, status) pairs of that category, across every workflow's newest version."""
    category = values.pop("category", None)
    if category is None:
        return values
    from .. import rules
    from ..services import workflows as workflow_service

    if category not in rules.model.CATEGORIES:
        raise UsageError(f"--category: unknown category '{category}' (categories: {', '.join(rules.model.CATEGORIES)})")
    pairs = [
        (wf.name, s.name)
        for wf, _ in workflow_service.all_latest(conn)
        for s in wf.statuses
        if wf.category(s.name) == category
    ]
    return {**values, "workflow_statuses": tuple(pairs) or (("", ""),)}


def resolve_for_saving(
    conn: sqlite3.Connection, filters: FilterOptions, *, actor: str, now: datetime
) -> tuple[CaseFilter, dict[str, Any]]:
    """For `views add`: the fixed filter, and the filters that stay relative to
    who uses the view and when (--mine, --overdue, --due-within)."""
    from ..services.views import RELATIVE

    filter_check.check(conn, filters.given())
    values = _with_category(conn, filters.given())
    base, relative = _view(conn, filters.view)
    relative = {**relative, **{k: values[k] for k in RELATIVE if values.get(k)}}
    fixed = {k: v for k, v in values.items() if k not in RELATIVE}
    return build(fixed, actor=actor, now=now, base=base), relative
