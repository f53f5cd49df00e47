"""Options shared by many commands, declared once as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

import click
import typer

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Format = Annotated[
    str | None,
    typer.Option("--format", "-f", metavar="table|json|ndjson|csv", help="Output format (default: table)."),
]
Wide = Annotated[
    bool, typer.Option("--wide", help="On a terminal, show every cell whole (the table may be wider than it).")
]
Reason = Annotated[str | None, typer.Option("--reason", "-r", help="Why; recorded on the event.")]
ExpectStatus = Annotated[
    str | None, typer.Option("--expect-status", metavar="STATUS", help="Refuse (exit 5) unless the case is in STATUS.")
]
ExpectVersion = Annotated[
    int | None, typer.Option("--expect-version", metavar="N", help="Refuse (exit 5) unless the case is at version N.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would change (or why not); write nothing.")]

# The case filters of every command that selects cases (see filtering.filter_options).
Status = Annotated[
    list[str] | None, typer.Option("--status", "-s", metavar="STATUS", help="Status (repeatable: any of them).")
]
Workflow = Annotated[str | None, typer.Option("--workflow", "-w", metavar="NAME", help="Workflow name.")]
Assignee = Annotated[str | None, typer.Option("--assignee", metavar="USER", help="Assigned agent.")]
Team = Annotated[str | None, typer.Option("--team", metavar="TEAM", help="Assigned team.")]
Tag = Annotated[list[str] | None, typer.Option("--tag", "-t", metavar="TAG", help="Tag (repeatable: all of them).")]
Country = Annotated[str | None, typer.Option("--country", metavar="CC", help="Subject's ISO 3166 country code.")]
Priority = Annotated[str | None, typer.Option("--priority", metavar="P", help="low, normal, high or urgent.")]
CreatedSince = Annotated[
    str | None,
    typer.Option(
        "--created-since", metavar="WHEN", help="Created at or after (date, ISO time, 7d ago, today, yesterday)."
    ),
]
CreatedUntil = Annotated[
    str | None,
    typer.Option(
        "--created-until",
        metavar="WHEN",
        help="Created at or before (a date, or today, yesterday, includes its whole day; 7d: 7 days ago).",
    ),
]
Where = Annotated[
    list[str] | None,
    typer.Option(
        "--where", metavar="KEY=VALUE", help="KEY=VALUE on case data (dotted path) or subject.FIELD (repeatable)."
    ),
]
Parent = Annotated[str | None, typer.Option("--parent", metavar="ID", help="Child cases of case ID.")]
Category = Annotated[
    str | None,
    typer.Option(
        "--category", metavar="CATEGORY", help="Status category: initial, active, waiting or inactive (as in RT)."
    ),
]
Open = Annotated[bool, typer.Option("--open", help="Only cases not in a final status.")]
Closed = Annotated[bool, typer.Option("--closed", help="Only cases in a final status.")]
Mine = Annotated[bool, typer.Option("--mine", help="Only cases assigned to the actor.")]
Unassigned = Annotated[bool, typer.Option("--unassigned", help="Only cases with no assignee.")]
Overdue = Annotated[bool, typer.Option("--overdue", help="Only open cases past their due time.")]
DueWithin = Annotated[
    str | None,
    typer.Option("--due-within", metavar="DURATION", help="Only open cases due within a duration (30m, 24h, 3d)."),
]
InStatusFor = Annotated[
    str | None,
    typer.Option(
        "--in-status-for",
        metavar="DURATION",
        help="Only cases that have been in their status for at least a duration (3d, 2w).",
    ),
]
View = Annotated[str | None, typer.Option("--view", metavar="NAME", help="Start from a saved view's filters.")]

# `create` and `import`: when an email (or subject ref) names a subject whose details differ.
SubjectMatch = Annotated[
    str | None,
    typer.Option(
        "--subject",
        metavar="existing|new",
        click_type=click.Choice(["existing", "new"]),
        help="When the email names a subject with another name, date of birth or entity type: "
        "existing attaches to that subject, new makes another (else exit 5).",
    ),
]
