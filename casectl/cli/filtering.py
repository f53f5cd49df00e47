"""The case filter options, declared once and attached to every command that
selects cases (list, export, report, stats, take, views add), so they all
accept the same flags and mean the same thing."""

from __future__ import annotations

from typing import Any

import click

from .. import ids
from ..errors import UsageError
from ..filters import CaseFilter, WhereClause
from ..timeutil import iso, parse_duration, parse_time

META = "casectl.filter"


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value not in (None, (), False):
        ctx.meta.setdefault(META, {})[param.name] = value
    return value


def _opt(decls: list[str], help: str, **kw: Any) -> click.Option:
    return click.Option(decls, expose_value=False, callback=_store, help=help, **kw)


def filter_options() -> list[click.Option]:
    return [
        _opt(["--status", "-s"], "Status (repeatable: any of them).", multiple=True, metavar="STATUS"),
        _opt(["--workflow", "-w"], "Workflow name.", metavar="NAME"),
        _opt(["--assignee"], "Assigned agent.", metavar="USER"),
        _opt(["--team"], "Assigned team.", metavar="TEAM"),
        _opt(["--tag", "-t"], "Tag (repeatable: all of them).", multiple=True, metavar="TAG"),
        _opt(["--country"], "Subject's ISO 3166 country code.", metavar="CC"),
        _opt(["--priority"], "low, normal, high or urgent.", metavar="P"),
        _opt(["--created-since"], "Created at or after (date or ISO time).", metavar="WHEN"),
        _opt(["--created-until"], "Created at or before (a date includes its whole day).", metavar="WHEN"),
        _opt(
            ["--where"],
            "KEY=VALUE on case data (dotted path) or subject.FIELD (repeatable).",
            multiple=True,
            metavar="KEY=VALUE",
        ),
        _opt(["--parent"], "Child cases of case ID.", metavar="ID"),
        _opt(["--open"], "Only cases not in a final status.", is_flag=True, default=False),
        _opt(["--closed"], "Only cases in a final status.", is_flag=True, default=False),
        _opt(["--mine"], "Only cases assigned to the actor.", is_flag=True, default=False),
        _opt(["--unassigned"], "Only cases with no assignee.", is_flag=True, default=False),
        _opt(["--overdue"], "Only open cases past their due time.", is_flag=True, default=False),
        _opt(["--due-within"], "Only open cases due within a duration (30m, 24h, 3d).", metavar="DURATION"),
        _opt(["--view"], "Start from a saved view's filters.", metavar="NAME"),
    ]


def add_filter_options(cmd: click.Command) -> click.Command:
    names = {p.name for p in cmd.params}
    cmd.params.extend(o for o in filter_options() if o.name not in names)
    return cmd


def given(ctx: click.Context | None = None) -> dict[str, Any]:
    ctx = ctx or click.get_current_context()
    return dict(ctx.meta.get(META, {}))


def build(values: dict[str, Any], *, actor: str, now, base: CaseFilter | None = None) -> CaseFilter:
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
    where_objs = f.pop("where")
    cf = CaseFilter.from_dict({k: v for k, v in f.items()})
    return CaseFilter(**{**cf.__dict__, "where": where_objs})


def _with_view(conn, values: dict[str, Any]) -> tuple[dict[str, Any], CaseFilter | None, dict[str, Any]]:
    from ..services import views as view_service

    if not values.get("view"):
        return values, None, {}
    base, relative = view_service.split(view_service.get(conn, values["view"]))
    return values, base, relative


def resolve(conn, *, actor: str, now) -> CaseFilter:
    """The filter a command was given, starting from `--view` (saved or built-in) when named."""
    values, base, relative = _with_view(conn, given())
    merged = {**relative, **values}
    return build(merged, actor=actor, now=now, base=base)


def resolve_for_saving(conn, *, actor: str, now) -> tuple[CaseFilter, dict[str, Any]]:
    """For `views add`: the fixed filter, and the filters that stay relative to
    who uses the view and when (--mine, --overdue, --due-within)."""
    from ..services.views import RELATIVE

    values, base, relative = _with_view(conn, given())
    relative = {**relative, **{k: values[k] for k in RELATIVE if values.get(k)}}
    fixed = {k: v for k, v in values.items() if k not in RELATIVE}
    return build(fixed, actor=actor, now=now, base=base), relative
