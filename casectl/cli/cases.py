"""create, show, act, approve, reject, event, status, history."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from .. import ids, rules
from ..errors import InvalidInput, UsageError
from ..services import cases as case_service
from . import context, output, show_render
from .options import DryRun, ExpectStatus, ExpectVersion, Format, Json, Reason, SubjectMatch, Wide

app = typer.Typer()


def read_json_arg(value: str | None, what: str) -> dict[str, Any]:
    """--data JSON, --data @file.json or --data - (stdin)."""
    if value is None:
        return {}
    if value == "-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInput(f"{what}: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    else:
        text = value
    return case_service.parse_data(text, what)


@app.command("create")
def create(
    workflow: Annotated[
        str, typer.Option("--workflow", "-w", help="Workflow name (kyb, simple, screening or custom).")
    ],
    ref: Annotated[str | None, typer.Option("--ref", help="External reference (unique).")] = None,
    subject_name: Annotated[str | None, typer.Option("--subject-name", help="Subject's name.")] = None,
    subject_email: Annotated[
        str | None, typer.Option("--subject-email", help="Subject's email; an existing subject is reused.")
    ] = None,
    subject_dob: Annotated[
        str | None, typer.Option("--subject-dob", metavar="YYYY-MM-DD", help="Subject's date of birth.")
    ] = None,
    subject_ref: Annotated[
        str | None, typer.Option("--subject-ref", help="Subject's own reference; an existing subject is reused.")
    ] = None,
    country: Annotated[
        str | None, typer.Option("--country", metavar="CC", help="Subject's ISO 3166 country code.")
    ] = None,
    entity_type: Annotated[str | None, typer.Option("--entity-type", help="person or company.")] = None,
    data: Annotated[
        str | None, typer.Option("--data", metavar="JSON|@FILE|-", help="User-provided data (a JSON object).")
    ] = None,
    registry_data: Annotated[
        str | None,
        typer.Option("--registry-data", metavar="JSON|@FILE|-", help="Registry-provided data (a JSON object)."),
    ] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Assign to this agent.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Assign to this team.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable).")] = None,
    priority: Annotated[str, typer.Option("--priority", help="low, normal, high or urgent.")] = "normal",
    status: Annotated[
        str | None, typer.Option("--status", help="Start in this status (default: the workflow's initial one).")
    ] = None,
    block: Annotated[
        list[str] | None, typer.Option("--block", metavar="KIND:NAME[=@FILE]", help="Add a block (repeatable).")
    ] = None,
    subject: SubjectMatch = None,
    as_json: Json = False,
) -> None:
    """Create a case and print its id.

    Example: id=$(casectl create --workflow kyb --subject-email ada@example.com --country GB)
    """
    if data == "-" and registry_data == "-":
        raise UsageError("only one of --data and --registry-data can read stdin")
    if entity_type is not None and entity_type not in ("person", "company"):
        raise InvalidInput(f"--entity-type: '{entity_type}' is not person or company")
    nc = case_service.NewCase(
        workflow=workflow,
        ref=ref,
        subject_name=subject_name,
        subject_email=subject_email,
        subject_dob=subject_dob,
        subject_ref=subject_ref,
        country=country.upper() if country else None,
        entity_type=entity_type,
        data=read_json_arg(data, "--data"),
        registry_data=read_json_arg(registry_data, "--registry-data"),
        assignee=assignee,
        team=team,
        tags=list(tag or []),
        priority=priority,
        status=status,
        blocks=[parse_block_spec(b) for b in block or []],
        subject_match=subject,
    )
    conn = context.open_db()
    case = case_service.create(conn, nc, actor=context.actor(), now=context.now())
    if as_json:
        output.emit_json(output.case_document(case))
    else:
        click.echo(ids.fmt("case", case["id"]))


def parse_block_spec(spec: str) -> dict[str, Any]:
    """kind:name[=@file.json] -> {"kind", "name", "data"}."""
    head, _, source = spec.partition("=")
    kind, sep, name = head.partition(":")
    if not sep or not kind or not name:
        raise UsageError(f"--block takes KIND:NAME[=@FILE], got '{spec}'")
    if kind not in rules.BLOCK_KINDS_BY_NAME:
        raise InvalidInput(f"--block: unknown block kind '{kind}' (kinds: {', '.join(rules.BLOCK_KINDS_BY_NAME)})")
    return {"kind": kind, "name": name, "data": read_json_arg(source, f"--block {head}") if source else {}}


@app.command("show")
def show(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF", help="Case id (C-12) or external reference.")],
    as_json: Json = False,
) -> None:
    """Show a case, what may happen to it now, and its recent history.

    Example: casectl show C-12
    """
    conn = context.open_db()
    v = case_service.view(conn, case, actor=context.actor(), now=context.now())
    c = v["case"]
    allowed = [{"action": x.action, "to": x.target} for x in v["allowed"]]
    refused = [{"action": x.action, "reason": x.reason} for x in v["refused"]]
    if as_json:
        doc = output.case_document(c)
        doc.update(
            allowed_actions=allowed,
            refused_actions=refused,
            reupload_marks=v["reupload_marks"],
            history=[output.event_row(e) for e in v["history"]],
            events_total=v["events_total"],
            **v["parts"],
        )
        output.emit_json(doc)
        return
    wf = v["workflow"]
    lines = [f"{ids.fmt('case', c['id'])}" + (f"  ({c['ref']})" if c.get("ref") else "")]
    status = wf.status(c["status"])
    lines.append(f"  status:     {c['status']}" + (f" — {status.description}" if status and status.description else ""))
    lines.append(f"  workflow:   {c['workflow']} v{c['workflow_version']}")
    if c.get("subject_id") is not None:
        who = c.get("subject_name") or c.get("subject_email") or ""
        extra = ", ".join(
            x
            for x in (
                c.get("subject_email") if who != c.get("subject_email") else None,
                c.get("subject_dob"),
                c.get("subject_country"),
            )
            if x
        )
        lines.append(f"  subject:    {ids.fmt('subject', c['subject_id'])} {who}" + (f" ({extra})" if extra else ""))
    for label, key in (("assignee", "assignee"), ("team", "team"), ("priority", "priority")):
        if c.get(key):
            lines.append(f"  {label + ':':<11} {c[key]}")
    if c["tags"]:
        lines.append(f"  tags:       {', '.join(c['tags'])}")
    lines.append(f"  created:    {output.local_time(c['created_at'])} by {c.get('created_by')} ({c['origin']})")
    if c.get("due_at"):
        lines.append(f"  due:        {output.local_time(c['due_at'])}")
    if c.get("decision"):
        lines.append(
            f"  decision:   {c['decision']}"
            + (f" — {c['decision_reason']}" if c.get("decision_reason") else "")
            + f" ({output.local_time(c['decided_at'])})"
        )
    if c.get("parent_id"):
        lines.append(f"  parent:     {ids.fmt('case', c['parent_id'])}")
    if c["data"]:
        lines.append(f"  data:       {output.dumps(c['data'], indent=None)}")
    if c["registry_data"]:
        lines.append(f"  registry:   {output.dumps(c['registry_data'], indent=None)}")
    names = []
    for x in v["allowed"]:
        label = x.action
        if x.action == "request_reuploads":
            label += f" ({v['reupload_marks']})"
        spec = v["workflow"].action(x.action)
        if spec is not None and any(r.when for r in spec.routes if r.leaves(c["status"])):
            label += f" (-> {x.target}, by its conditions now)"  # where a conditional route would take the case
        names.append(label)
    lines.append(f"  allowed now: {', '.join(names) if names else 'none'}")
    for x in v["refused"]:
        lines.append(f"    not {x.action}: {x.reason}")
    for title, body in show_render.sections(v["parts"]):
        lines.append(f"  {title}:")
        lines.extend(f"    {t}" for t in body)
    shown = len(v["history"])
    lines.append(f"  history ({shown} of {v['events_total']}; `casectl history {ids.fmt('case', c['id'])}` for all):")
    lines.extend(f"    {output.describe_event(e)}" for e in v["history"])
    click.echo("\n".join(output.printable(line) for line in lines))


def _report_outcome(outcome: case_service.Outcome, as_json: bool) -> None:
    c = outcome.case
    cid = ids.fmt("case", c["id"])
    if as_json:
        doc = {
            "id": cid,
            "action": outcome.verdict.action,
            "from": outcome.from_status,
            "to": outcome.verdict.target,
            "dry_run": outcome.dry_run,
            "event": ids.fmt("event", outcome.event_id),
            "changes": outcome.changes,
            "case": output.case_document(c),
        }
        output.emit_json(doc)
        return
    prefix = "would move" if outcome.dry_run else "moved"
    click.echo(f"{cid}: {outcome.verdict.action}: {prefix} {outcome.from_status} -> {outcome.verdict.target}")
    for b in outcome.changes.get("blocks", []):
        click.echo(f"  block {b['block']}: {b['from']} -> {b['to']}")


@app.command("act")
def act(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF|-", help="Case id or reference; - reads ids from stdin.")],
    action: Annotated[str, typer.Argument(help="Action name, e.g. approve, reject, request_reuploads.")],
    reason: Reason = None,
    decision: Annotated[
        str | None, typer.Option("--decision", help="Decision value, for actions that take one.")
    ] = None,
    expect_status: ExpectStatus = None,
    expect_version: ExpectVersion = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Perform an agent action on a case.

    Example: casectl act C-12 request_reuploads --expect-status manual_review
    Example: casectl list --view kyb-revisions --ids | casectl act - reject --reason "no response" --dry-run
    """
    if case == "-":  # ids from stdin: one transaction, all or nothing
        from .queue import act_many

        if expect_version is not None:
            raise UsageError("--expect-version names one case; it cannot be used with `act -`")
        act_many(
            action,
            trigger=rules.AGENT,
            reason=reason,
            decision=decision,
            expect_status=expect_status,
            dry_run=dry_run,
            as_json=as_json,
        )
        return
    conn = context.open_db()
    outcome = case_service.act(
        conn,
        case,
        action,
        actor=context.actor(),
        now=context.now(),
        reason=reason,
        decision=decision,
        expect_status=expect_status,
        expect_version=expect_version,
        dry_run=dry_run,
    )
    _report_outcome(outcome, as_json)


@app.command("approve")
def approve(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    reason: Reason = None,
    expect_status: ExpectStatus = None,
    expect_version: ExpectVersion = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Approve a case (shortcut for `act ID approve`).

    Example: casectl approve C-12 --reason "documents verified"
    """
    act(case, "approve", reason, None, expect_status, expect_version, dry_run, as_json)


@app.command("reject")
def reject(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (required).")] = None,
    expect_status: ExpectStatus = None,
    expect_version: ExpectVersion = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Reject a case with a reason (shortcut for `act ID reject`).

    Example: casectl reject C-12 --reason "sanctions hit"
    """
    if not reason:
        # The same code as any action whose reason the workflow requires (`act ID cancel`): 6.
        raise InvalidInput("reject needs a reason: add --reason TEXT")
    act(case, "reject", reason, None, expect_status, expect_version, dry_run, as_json)


@app.command("event")
def event(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    name: Annotated[str, typer.Argument(metavar="EVENT", help="System event, e.g. collection_completed.")],
    reason: Reason = None,
    expect_status: ExpectStatus = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Record a system event on a case (e.g. collection_completed).

    Example: casectl event C-12 collection_completed
    """
    conn = context.open_db()
    outcome = case_service.act(
        conn,
        case,
        name,
        actor=context.actor(),
        now=context.now(),
        trigger=rules.SYSTEM,
        reason=reason,
        expect_status=expect_status,
        dry_run=dry_run,
    )
    _report_outcome(outcome, as_json)


@app.command("status")
def set_status(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    new_status: Annotated[str, typer.Argument(metavar="NEW_STATUS")],
    reason: Reason = None,
    expect_status: ExpectStatus = None,
    expect_version: ExpectVersion = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Set a case's status directly, where its workflow allows it.

    Example: casectl status C-12 pending --reason "waiting for bank statement"
    """
    conn = context.open_db()
    outcome = case_service.set_status(
        conn,
        case,
        new_status,
        actor=context.actor(),
        now=context.now(),
        reason=reason,
        expect_status=expect_status,
        expect_version=expect_version,
        dry_run=dry_run,
    )
    _report_outcome(outcome, as_json)


@app.command("history")
def history(
    case: Annotated[str, typer.Argument(metavar="ID_OR_REF")],
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """Print every event of a case: who, when, what, from -> to, why.

    Example: casectl history C-12 --json
    """
    conn = context.open_db()
    c, events = case_service.history(conn, case)
    if as_json:
        output.emit_json({"case": ids.fmt("case", c["id"]), "events": [output.event_row(e) for e in events]})
        return
    fmt = output.choose_format(fmt, False)
    if fmt == "table":  # a table on a terminal, tab-separated rows (event id first) in a pipe
        output.emit_rows(
            (output.history_row(e) for e in events), output.HISTORY_TABLE, fmt, empty="no events", wide=wide
        )
        return
    rows = (output.event_row(e) for e in events)
    output.emit_rows(rows, ["id", "at", "actor", "kind", "action", "from", "to", "reason", "data"], fmt)
