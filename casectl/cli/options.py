"""Options shared by many commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Format = Annotated[
    str | None,
    typer.Option("--format", "-f", metavar="table|json|ndjson|csv", help="Output format (default: table)."),
]
Reason = Annotated[str | None, typer.Option("--reason", "-r", help="Why; recorded on the event.")]
ExpectStatus = Annotated[
    str | None, typer.Option("--expect-status", metavar="STATUS", help="Refuse (exit 5) unless the case is in STATUS.")
]
ExpectVersion = Annotated[
    int | None, typer.Option("--expect-version", metavar="N", help="Refuse (exit 5) unless the case is at version N.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would change (or why not); write nothing.")]

# Filters shared by list, export, report, stats and views.
Status = Annotated[list[str] | None, typer.Option("--status", "-s", help="Status (repeatable).")]
Workflow = Annotated[str | None, typer.Option("--workflow", "-w", help="Workflow name.")]
Assignee = Annotated[str | None, typer.Option("--assignee", help="Assigned agent.")]
Team = Annotated[str | None, typer.Option("--team", help="Assigned team.")]
Tag = Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable; all must match).")]
Country = Annotated[str | None, typer.Option("--country", help="Subject's ISO country code.")]
Priority = Annotated[str | None, typer.Option("--priority", help="low, normal, high or urgent.")]
CreatedSince = Annotated[str | None, typer.Option("--created-since", metavar="DATE|TIME", help="Created at or after.")]
CreatedUntil = Annotated[
    str | None,
    typer.Option("--created-until", metavar="DATE|TIME", help="Created at or before (a date includes the whole day)."),
]
Where = Annotated[
    list[str] | None,
    typer.Option(
        "--where", metavar="KEY=VALUE", help="Data field (dotted path) or subject.FIELD equals VALUE (repeatable)."
    ),
]
Parent = Annotated[str | None, typer.Option("--parent", metavar="ID", help="Child cases of this case.")]
Open = Annotated[bool, typer.Option("--open", help="Only cases not in a final status.")]
Closed = Annotated[bool, typer.Option("--closed", help="Only cases in a final status.")]
Unassigned = Annotated[bool, typer.Option("--unassigned", help="Only cases with no assignee.")]
Sort = Annotated[str | None, typer.Option("--sort", metavar="FIELD", help="Sort by FIELD; -FIELD for descending.")]
Limit = Annotated[int | None, typer.Option("--limit", "-n", min=0, help="At most N cases.")]
