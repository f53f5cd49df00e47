"""activities (one case's, or across cases) and activity (add / state / result / decide / assign)."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from .. import ids
from ..errors import UsageError
from ..services import content
from . import context, output
from .options import Format, Json, Reason, Wide

app = typer.Typer()

CASE_COLUMNS = ["id", "type", "label", "state", "assignee", "team", "decision", "result"]
ALL_COLUMNS = [
    "id",
    "case",
    "case_status",
    "subject_name",
    "type",
    "state",
    "assignee",
    "team",
    "decision",
    "result",
    "updated_at",
]
FIELDS = [
    "id",
    "case",
    "case_status",
    "workflow",
    "subject_name",
    "type",
    "label",
    "state",
    "assignee",
    "team",
    "result",
    "decision",
    "decided_by",
    "decided_at",
    "requirement",
    "created_at",
    "created_by",
    "updated_at",
]
ACTIVITY_USAGE = (
    "usage: casectl activity ID add TYPE [--assignee USER | --team TEAM] [--label TEXT]\n"
    "       casectl activity ID ACT state STATE [--reason TEXT]\n"
    "       casectl activity ID ACT result KEY=VALUE...\n"
    "       casectl activity ID ACT decide VALUE [--reason TEXT]\n"
    "       casectl activity ID ACT assign [--assignee USER] [--team TEAM]\n"
    "ACT is an activity id (A-7) or its type when only one activity of the case has it"
)
VERBS = ("add", "state", "result", "decide", "assign")


def _usage(problem: str) -> UsageError:
    return UsageError(f"{problem}; verbs: {', '.join(VERBS)}", details=ACTIVITY_USAGE.splitlines())


@app.command("activities")
def activities(
    case: Annotated[str | None, typer.Argument(metavar="[ID_OR_REF]", help="One case's activities.")] = None,
    all_cases: Annotated[
        bool, typer.Option("--all", help="Activities across all cases (the activity results page).")
    ] = False,
    state: Annotated[list[str] | None, typer.Option("--state", "-s", help="Activity state (repeatable).")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Activity type (repeatable).")] = None,
    team: Annotated[list[str] | None, typer.Option("--team", help="Team (repeatable).")] = None,
    assignee: Annotated[list[str] | None, typer.Option("--assignee", help="Assignee (repeatable).")] = None,
    decision: Annotated[list[str] | None, typer.Option("--decision", help="Decision (repeatable).")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Cases of this workflow.")] = None,
    undecided: Annotated[bool, typer.Option("--undecided", help="Only activities without a decision.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="At most N activities.")] = None,
    fields: Annotated[str | None, typer.Option("--fields", metavar="A,B", help="Columns to print.")] = None,
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """List a case's activities, or activities across cases with --all.

    Example: casectl activities --all --state pending_activity_decision --team dbs --format csv
    """
    filtered = any((state, type_, team, assignee, decision, workflow, undecided, limit is not None))
    if case is None and not all_cases:
        raise UsageError("give a case ID, or --all for activities across cases")
    if case is not None and all_cases:
        raise UsageError("give a case ID or --all, not both")
    if case is not None and filtered:
        raise UsageError(
            "--state, --type, --team, --assignee, --decision, --workflow, --undecided and --limit go with --all"
        )
    conn = context.open_db()
    if case is not None:
        c, rows = content.list_activities(conn, case)
        if as_json:
            output.emit_json({"case": ids.fmt("case", c["id"]), "status": c["status"], "activities": rows})
            return
        fmt = output.choose_format(fmt, False)
        columns = output.pick_fields(fields, FIELDS, FIELDS if fmt in ("json", "ndjson") else CASE_COLUMNS)
        output.emit_rows(rows, columns, fmt, empty="no activities", wide=wide)
        return
    fmt = output.choose_format(fmt, as_json)
    columns = output.pick_fields(fields, FIELDS, FIELDS if fmt in ("json", "ndjson") else ALL_COLUMNS)
    matching = content.select_activities(
        conn,
        states=state or [],
        types=type_ or [],
        teams=team or [],
        assignees=assignee or [],
        decisions=decision or [],
        workflow=workflow,
        undecided=undecided,
        limit=limit,
    )
    output.emit_rows(matching, columns, fmt, empty="no activities match", wide=wide)


@app.command("activity")
def activity(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ID ACT VERB [ARGS]...",
            help="ID add TYPE | ID ACT state STATE | ID ACT result KEY=VALUE... | ID ACT decide VALUE | ID ACT assign",
        ),
    ] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Agent to hand the activity to.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team to hand the activity to.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="A readable name for a new activity.")] = None,
    reason: Reason = None,
    as_json: Json = False,
) -> None:
    """Add an activity or change its state, result or decision; `assign` hands it to someone else.

    \b
    ID add TYPE [--assignee U | --team T]   add an activity (handed to an agent or a team)
    ID ACT state STATE                       move it (ACT: A-7, or its type when unique on the case)
    ID ACT result KEY=VALUE...               record result data
    ID ACT decide VALUE                      take a decision (the workflow's decisions; default reviewed)
    ID ACT assign [--assignee U] [--team T]  hand it over

    Example: casectl activity C-12 dbs_enhanced result certificate=001234 outcome=clear
    """
    words = list(words or [])
    if len(words) < 3:
        raise _usage("activity needs ID, then `add TYPE` or ACT and a verb")
    case, second, verb, rest = words[0], words[1], words[2], words[3:]
    conn = context.open_db()
    actor, now = context.actor(), context.now()
    if second == "add":
        if len(words) != 3:
            raise _usage("activity ID add takes one TYPE")
        if assignee and team:
            raise _usage("give --assignee or --team, not both")
        a = content.add_activity(conn, case, verb, label=label, assignee=assignee, team=team, actor=actor, now=now)
        _print(
            a,
            as_json,
            f"{a['case']}: {a['id']} {a['type']} added ({a['state']})"
            + (f" for {assignee}" if assignee else f" for team {team}" if team else ""),
        )
        return
    if verb not in VERBS[1:]:
        raise _usage(f"unknown activity verb '{verb}'")
    if label is not None:
        raise _usage("--label goes with `activity ID add`")
    if verb != "assign" and (assignee or team):
        raise _usage("--assignee and --team go with `add` and `assign`")
    if verb == "state":
        if len(rest) != 1:
            raise _usage("activity ID ACT state takes one STATE")
        a = content.set_activity_state(conn, case, second, rest[0], reason=reason, actor=actor, now=now)
        msg = f"{a['case']}: {a['id']} {a['type']} is {a['state']}" + ("" if a["changed"] else " (unchanged)")
    elif verb == "result":
        if not rest:
            raise _usage("activity ID ACT result needs KEY=VALUE...")
        a = content.set_activity_result(conn, case, second, rest, actor=actor, now=now)
        msg = f"{a['case']}: {a['id']} {a['type']} result: {output.dumps(a['result'], indent=None)}"
    elif verb == "decide":
        if len(rest) != 1:
            raise _usage("activity ID ACT decide takes one VALUE")
        a = content.decide_activity(conn, case, second, rest[0], reason=reason, actor=actor, now=now)
        msg = f"{a['case']}: {a['id']} {a['type']} decided {a['decision']} ({a['state']})"
    else:
        if rest:
            raise _usage("activity ID ACT assign takes --assignee and/or --team")
        if not (assignee or team):
            raise _usage("activity ID ACT assign needs --assignee USER or --team TEAM")
        a = content.assign_activity(conn, case, second, assignee=assignee, team=team, actor=actor, now=now)
        msg = f"{a['case']}: {a['id']} {a['type']} handed to " + ", ".join(
            x for x in (a["assignee"] and f"{a['assignee']}", a["team"] and f"team {a['team']}") if x
        )
    for name in a.get("events") or []:
        msg += f"\n{a['case']}: {name}: the case is now {a['case_status']}"
    _print(a, as_json, msg)


def _print(a: dict, as_json: bool, message: str) -> None:
    if as_json:
        output.emit_json(a)
    else:
        click.echo(message)
