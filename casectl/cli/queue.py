"""search, assign, unassign, take, tag, note, stats and views: working the queue.

assign, unassign, tag and note take `-` instead of an id to read ids from
stdin (one per line) and apply them all in one transaction.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import click
import typer

from .. import ids
from ..errors import UsageError
from ..services import bulk
from ..services import queue as queue_service
from . import context, filtering, output
from .filtering import FilterOptions, filter_options
from .options import DryRun, Format, Json, Wide

app = typer.Typer()
views_app = typer.Typer(help="Save, list and remove named filters (views).", no_args_is_help=True)

CaseArg = Annotated[str, typer.Argument(metavar="ID_OR_REF|-", help="Case id or reference; - reads ids from stdin.")]


# --- helpers ---------------------------------------------------------------------


def stdin_ids() -> list[str]:
    return bulk.read_ids(sys.stdin)


def apply(
    case: str,
    fn: Callable[[Any, dict[str, Any]], dict[str, Any]],
    *,
    dry_run: bool,
    what: str,
    as_json: bool,
    render: Callable[[dict[str, Any], bool], str],
) -> None:
    """Run fn on one case, or on every id from stdin in one transaction; print the results."""
    conn = context.open_db()
    if case == "-":
        refs = stdin_ids()
        if not refs:
            click.echo("casectl: no case ids on stdin; nothing to do", err=True)
            return
        result = bulk.run(conn, refs, lambda ref, c: fn(conn, c), dry_run=dry_run, what=what)
        emit_bulk(result, lambda r: render(r, dry_run), as_json, json_of=lambda r: r)
        return
    r = queue_service.apply_one(conn, case, lambda c: fn(conn, c), dry_run=dry_run)
    if as_json:
        output.emit_json({**r, "dry_run": dry_run})
    else:
        click.echo(render(r, dry_run))


def emit_bulk(
    result: bulk.BulkResult, render: Callable[[Any], str], as_json: bool, json_of: Callable[[Any], Any]
) -> None:
    """Print a batch's results; a dry run also lists the refusals and exits with their code."""
    if as_json:
        doc: dict[str, Any] = {"dry_run": result.dry_run, "results": [json_of(r) for r in result.done]}
        if result.dry_run:
            doc["refused"] = [{"id": ref, "error": e.message, "exit_code": int(e.code)} for ref, e in result.refused]
        output.emit_json(doc)
    else:
        for r in result.done:
            click.echo(render(r))
        for ref, e in result.refused:
            click.echo(output.printable(f"{ref}: refused: {e.message}"), err=True)
    if result.refused:
        first = result.refused[0][1]
        click.echo(
            f"casectl: dry run: {len(result.refused)} case(s) would be refused; the batch would not apply", err=True
        )
        raise typer.Exit(int(first.code))


def _changes_line(r: dict[str, Any], dry_run: bool) -> str:
    if not r["changes"]:
        return f"{r['id']}: unchanged"
    verb = "would set" if dry_run else "set"
    return f"{r['id']}: {verb} " + ", ".join(f"{k} {v[0] or '-'} -> {v[1] or '-'}" for k, v in r["changes"].items())


# --- search ----------------------------------------------------------------------


@app.command("search")
@filter_options
def search(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="Words to find (prefixes match; accents are ignored).")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most N cases.")] = 50,
    fields: Annotated[str | None, typer.Option("--fields", metavar="A,B", help="Columns to print.")] = None,
    only_ids: Annotated[bool, typer.Option("--ids", help="Print case ids only, one per line (for pipes).")] = False,
    fmt: Format = None,
    as_json: Json = False,
    wide: Wide = False,
    *,
    filters: FilterOptions,
) -> None:
    """Search cases by id, reference, subject name, email or date of birth, best match first.

    Example: casectl search "zoe mull" --status manual_review --format json
    """
    from ..services import search as search_service

    fmt = output.choose_format(fmt, as_json)
    columns = (
        ["id"]
        if only_ids
        else output.pick_fields(
            fields, output.CASE_FIELDS, output.CASE_FIELDS if fmt in ("json", "ndjson") else output.CASE_TABLE
        )
    )
    conn = context.open_db()
    f = filtering.resolve(conn, filters, actor=context.actor(), now=context.now())
    rows = (output.case_row(c) for c in search_service.search(conn, text, f, limit=limit))
    if only_ids:
        for r in rows:
            click.echo(r["id"])
        return
    output.emit_rows(rows, columns, fmt, headers=output.CASE_HEADERS, empty="no cases match", wide=wide)


# --- assignment ------------------------------------------------------------------


@app.command("assign")
def assign(
    case: CaseArg,
    user: Annotated[str | None, typer.Argument(metavar="USER", help="The agent to assign.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="The team to assign.")] = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Assign a case (or ids from stdin) to an agent, a team, or both.

    Example: casectl list --view kyb-manual-review --ids | casectl assign - bob --team kyb-ops
    """
    if user is None and team is None:
        raise UsageError("give USER, --team TEAM or both (e.g. `casectl assign C-12 bob`)")
    apply(
        case,
        lambda conn, c: queue_service.assign_in(
            conn, c, assignee=user, team=team, actor=context.actor(), now=context.now()
        ),
        dry_run=dry_run,
        what="assignment",
        as_json=as_json,
        render=_changes_line,
    )


@app.command("unassign")
def unassign(
    case: CaseArg,
    team: Annotated[bool, typer.Option("--team", help="Remove the team as well.")] = False,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Remove a case's assignee (and with --team its team).

    Example: casectl unassign C-12
    """
    apply(
        case,
        lambda conn, c: queue_service.assign_in(
            conn, c, clear_assignee=True, clear_team=team, actor=context.actor(), now=context.now(), action="unassign"
        ),
        dry_run=dry_run,
        what="unassignment",
        as_json=as_json,
        render=_changes_line,
    )


@app.command("take")
@filter_options
def take(
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            metavar="KEYS",
            help="Serve by these keys, comma-separated: priority (urgent first), due (soonest SLA due first, "
            "none last), age (oldest first). Default: priority,due,age.",
        ),
    ] = None,
    as_json: Json = False,
    *,
    filters: FilterOptions,
) -> None:
    """Claim the next unassigned case you can act on now (most urgent, soonest due, oldest) and print its id.

    Example: id=$(casectl take --view kyb-manual-review); [ -n "$id" ] && casectl show "$id"
    """
    order = queue_service.take_order(sort)  # a bad --sort fails before the database is opened
    conn = context.open_db()
    f = filtering.resolve(conn, filters, actor=context.actor(), now=context.now())
    case = queue_service.take(conn, f, actor=context.actor(), now=context.now(), order=order)
    if case is None:
        # An empty queue is not an error (exit 0, nothing on stdout), like a list with no results.
        click.echo(
            "nothing to take: no unassigned case you can act on matches (see `casectl list --unassigned --open`)",
            err=True,
        )
        if as_json:
            output.emit_json(None)
        return
    if as_json:
        output.emit_json(output.case_document(case))
    else:
        click.echo(ids.fmt("case", case["id"]))


# --- tags and notes --------------------------------------------------------------


@app.command("tag", context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]})
def tag(
    case: CaseArg,
    changes: Annotated[list[str], typer.Argument(metavar="+TAG|-TAG...", help="Tags to add (+T) or remove (-T).")],
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Add (+T) or remove (-T) tags on a case (or ids from stdin).

    Example: casectl tag C-12 +vip -needs-callback
    """
    add, remove = queue_service.parse_tag_changes(changes)

    def render(r: dict[str, Any], dry: bool) -> str:
        what = " ".join([f"+{t}" for t in r["added"]] + [f"-{t}" for t in r["removed"]]) or "unchanged"
        return f"{r['id']}: {'would tag ' if dry and r['event'] else ''}{what} (tags: {', '.join(r['tags']) or 'none'})"

    apply(
        case,
        lambda conn, c: queue_service.tag_in(conn, c, add, remove, actor=context.actor(), now=context.now()),
        dry_run=dry_run,
        what="tags",
        as_json=as_json,
        render=render,
    )


@app.command("priority")
def priority(
    case: CaseArg,
    level: Annotated[str, typer.Argument(metavar="LEVEL", help="low, normal, high or urgent.")],
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Set a case's priority (or that of every id from stdin, all or nothing), recorded in its history.

    Example: casectl priority C-12 urgent
    """
    from ..services.validate import PRIORITIES

    if level not in PRIORITIES:
        raise UsageError(f"priority: '{level}' is not one of {', '.join(PRIORITIES)}")

    def render(r: dict[str, Any], dry: bool) -> str:
        if not r["event"]:
            return f"{r['id']}: priority already {r['priority']}"
        return f"{r['id']}: {'would set' if dry else 'priority'} {r['previous']} -> {r['priority']}"

    apply(
        case,
        lambda conn, c: queue_service.priority_in(conn, c, level, actor=context.actor(), now=context.now()),
        dry_run=dry_run,
        what="priority",
        as_json=as_json,
        render=render,
    )


@app.command("payment")
def payment(
    case: CaseArg,
    amount: Annotated[
        str, typer.Option("--amount", metavar="AMOUNT", help="The amount as a decimal, e.g. 42.50 (never rounded).")
    ],
    currency: Annotated[str, typer.Option("--currency", metavar="CODE", help="ISO 4217 code, e.g. GBP.")],
    reference: Annotated[
        str | None,
        typer.Option("--reference", metavar="REF", help="The payment's reference; one already on the case is exit 5."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="PAYER",
            help="subject or customer (default: customer in pending_customer_payment, else subject).",
        ),
    ] = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Record a payment on a case (fires its payment_received event where the workflow has one).

    The amount is kept exactly as a decimal in the currency's minor units; the
    reference is private text (redact erases it). A closed case takes no payment
    (exit 4). Where the case is in a status its workflow's payment_received
    system action leaves (screening: pending_payment, pending_customer_payment),
    the action fires; elsewhere the payment is only recorded.

    Example: casectl payment C-12 --amount 42.50 --currency GBP --reference INV-2041
    """
    from ..services import payments as payment_service

    if by is not None and by not in payment_service.PAYERS:
        raise UsageError(f"--by: '{by}' is not one of {', '.join(payment_service.PAYERS)}")

    def render(r: dict[str, Any], dry: bool) -> str:
        p = r["payment"]
        line = f"{r['id']}: {'would record' if dry else 'recorded'} payment {p['amount']} {p['currency']} by {p['by']}"
        if p["reference"]:
            line += f" (ref {p['reference']})"
        line += f" as {r['event']}"
        if r["fired"]:
            return f"{line}; {r['fired']}: {r['previous_status']} -> {r['status']}"
        return f"{line}; status stays {r['status']}"

    apply(
        case,
        lambda conn, c: payment_service.record_in(
            conn,
            c,
            amount=amount,
            currency=currency,
            reference=reference,
            by=by,
            actor=context.actor(),
            now=context.now(),
        ),
        dry_run=dry_run,
        what="payment",
        as_json=as_json,
        render=render,
    )


@app.command("note")
def note(
    case: CaseArg,
    text: Annotated[
        str | None, typer.Argument(metavar="TEXT", help="The note; - or nothing reads it from stdin.")
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Only agents see it: left out of exports, reports and digests.")
    ] = False,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Add a public or private note to a case's history.

    Example: casectl note C-12 --private "called the director, documents on their way"
    """
    if text is None or text == "-":
        if case == "-":
            raise UsageError("with `note -` the ids come from stdin, so give the note TEXT as an argument")
        text = sys.stdin.read()

    def render(r: dict[str, Any], dry: bool) -> str:
        kind = "private note" if r["private"] else "note"
        return f"{r['id']}: {'would add' if dry else 'added'} {kind} {r['note']}"

    apply(
        case,
        lambda conn, c: queue_service.note_in(conn, c, text, private=private, actor=context.actor(), now=context.now()),
        dry_run=dry_run,
        what="note",
        as_json=as_json,
        render=render,
    )


# --- act - (called by `casectl act -`) --------------------------------------------


def act_many(
    action: str,
    *,
    trigger: str,
    reason: str | None,
    decision: str | None,
    expect_status: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """`casectl act - ACTION`: every id on stdin, one transaction, all or nothing."""
    conn = context.open_db()
    refs = stdin_ids()
    if not refs:
        click.echo("casectl: no case ids on stdin; nothing to do", err=True)
        return
    result = bulk.act(
        conn,
        refs,
        action,
        actor=context.actor(),
        now=context.now(),
        trigger=trigger,
        reason=reason,
        decision=decision,
        expect_status=expect_status,
        dry_run=dry_run,
    )

    def render(o) -> str:
        verb = "would move" if dry_run else "moved"
        return f"{ids.fmt('case', o.case['id'])}: {o.verdict.action}: {verb} {o.from_status} -> {o.verdict.target}"

    def json_of(o) -> dict[str, Any]:
        return {
            "id": ids.fmt("case", o.case["id"]),
            "action": o.verdict.action,
            "from": o.from_status,
            "to": o.verdict.target,
            "dry_run": dry_run,
            "event": ids.fmt("event", o.event_id),
            "changes": o.changes,
        }

    emit_bulk(result, render, as_json, json_of)


# --- stats -----------------------------------------------------------------------


@app.command("stats")
@filter_options
def stats(
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="WHEN", help="Period start: a date, a time, 2w ago, today (default: 30d before --until)."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="WHEN", help="Period end (default: now; a date includes its day).")
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", metavar="status|workflow|assignee|team", help="Break the counts down.")
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option("--compare", metavar="previous", help="Compare with the previous period of the same length."),
    ] = None,
    as_json: Json = False,
    wide: Wide = False,
    *,
    filters: FilterOptions,
) -> None:
    """Open and closed counts, opened vs closed, time to decision, SLA breaches, workload.

    Example: casectl stats --since 2026-01-01 --by assignee --compare previous
    """
    from ..services import stats as stats_service
    from ..timeutil import parse_time

    if compare not in (None, "previous"):
        raise UsageError(f"--compare: '{compare}' is not supported; use --compare previous")
    now = context.now()
    conn = context.open_db()
    f = filtering.resolve(conn, filters, actor=context.actor(), now=now)
    doc = stats_service.stats(
        conn,
        f,
        now=now,
        since=parse_time(since, "--since", now=now) if since else None,
        until=parse_time(until, "--until", end_of_day=True, now=now) if until else None,
        by=by,
        compare=bool(compare),
    )
    if as_json:
        output.emit_json(doc)
        return
    p = doc["period"]
    lines = [
        f"open:      {doc['open']} (overdue {doc['overdue']})",
        f"closed:    {doc['closed_total']}",
        f"period:    {p['since']} .. {p['until']}",
        f"  opened:  {p['opened']}{_delta(doc, 'opened')}",
        f"  closed:  {p['closed']}{_delta(doc, 'closed')}",
        f"  median time to decision: "
        f"{'-' if p['median_decision_hours'] is None else str(p['median_decision_hours']) + 'h'}"
        f"{_delta(doc, 'median_decision_hours', 'h')}",
        f"  SLA breached: {p['sla_breached']}"
        + (f" ({p['sla_breach_rate']:.1%} of closed)" if p["sla_breach_rate"] is not None else "")
        + _delta(doc, "sla_breached"),
    ]
    if doc["workload"]:
        lines.append("workload (open cases):")
        lines += [f"  {w['assignee'] or '(unassigned)'}: {w['open']}" for w in doc["workload"]]
    click.echo("\n".join(lines))
    if by and doc.get("groups"):
        click.echo(f"by {by}:")
        cols = [by, "open", "overdue", "closed_total", "opened", "closed", "sla_breached"]
        output.emit_rows(doc["groups"], cols, "table", wide=wide)


def _delta(doc: dict[str, Any], key: str, unit: str = "") -> str:
    change = doc.get("change", {}).get(key)
    if change is None:
        return ""
    return f"  ({'+' if change >= 0 else ''}{change:g}{unit} vs previous {doc['previous'][key]}{unit if doc['previous'][key] is not None else ''})"


# --- views -----------------------------------------------------------------------


@views_app.command("add")
@filter_options
def views_add(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a saved view of the same name.")] = False,
    as_json: Json = False,
    *,
    filters: FilterOptions,
) -> None:
    """Save the given list filters as a named view.

    Example: casectl views add hk-companies --where subject.country=HK --where subject.entity_type=company
    """
    from ..services import views as view_service

    conn = context.open_db()
    fixed, relative = filtering.resolve_for_saving(conn, filters, actor=context.actor(), now=context.now())
    stored = view_service.to_stored(fixed, relative)
    view = view_service.add(conn, name, stored, replace=replace, actor=context.actor(), now=context.now())
    if as_json:
        output.emit_json(view)
    else:
        click.echo(f"saved view {name}: {view['description']}")


@views_app.command("list")
def views_list(fmt: Format = None, as_json: Json = False, wide: Wide = False) -> None:
    """List saved and built-in views with their filters.

    Example: casectl views list --format csv
    """
    from ..services import views as view_service

    fmt = output.choose_format(fmt, as_json)
    rows = view_service.list_views(context.open_db())
    columns = ["name", "builtin", "description"] + (
        ["filters", "created_at", "created_by"] if fmt in ("json", "ndjson") else []
    )
    output.emit_rows(rows, columns, fmt, headers={"description": "filters"}, empty="no views", wide=wide)


@views_app.command("rm")
def views_rm(name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Remove a saved view.

    Example: casectl views rm hk-companies
    """
    from ..services import views as view_service

    view_service.remove(context.open_db(), name)
    click.echo(f"removed view {name}", err=True)


__all__ = ["app", "views_app"]
