"""Where the rest of a case's life attaches to creation and status changes.

`cases.insert_case` and `cases.transition` call these inside their
transaction; the modules they call own the details: content (blocks,
activities, child cases), queue (SLA clock, notes) and effects (the outbox).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..rules import Workflow


def after_create(
    conn: sqlite3.Connection, *, case_id: int, wf: Workflow, nc: Any, actor: str, now: datetime, event_id: int
) -> None:
    from . import content, effects, queue

    content.on_create(conn, case_id=case_id, wf=wf, nc=nc, actor=actor, now=now)
    queue.on_create(conn, case_id=case_id, wf=wf, actor=actor, now=now)
    effects.on_event(conn, "case.created", case_id=case_id, wf=wf, event_id=event_id, action=None, now=now)


def after_create_batch(
    conn: sqlite3.Connection, cases: list[tuple[int, Workflow, Any, int]], *, actor: str, now: datetime
) -> None:
    """after_create for many new cases (case_id, workflow, new case, created event id), as `casectl import`
    makes them. The SLA clock (queue) is written with the rows themselves (queue.on_create_batch gives it);
    here come the required activities (content) and the case.created effects, in after_create's order."""
    from . import content, effects

    content.on_create_batch(conn, ((case_id, wf, nc) for case_id, wf, nc, _ in cases), actor=actor, now=now)
    effects.on_event_batch(
        conn, effects.CREATED, ((case_id, wf, event_id) for case_id, wf, _, event_id in cases), now=now
    )


def after_transition(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    wf: Workflow,
    action: str | None,
    from_status: str,
    to_status: str,
    actor: str,
    now: datetime,
    event_id: int,
    messages: tuple[str, ...],
    moved_blocks: list[dict],
    reason: str | None,
    decision: str | None,
) -> None:
    from . import content, effects, queue

    queue.on_transition(conn, case_id=case_id, wf=wf, from_status=from_status, to_status=to_status, now=now)
    effects.on_transition(
        conn,
        case_id=case_id,
        wf=wf,
        action=action,
        from_status=from_status,
        to_status=to_status,
        event_id=event_id,
        messages=messages,
        moved_blocks=moved_blocks,
        reason=reason,
        decision=decision,
        now=now,
    )
    content.on_transition(
        conn,
        case_id=case_id,
        wf=wf,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        now=now,
        event_id=event_id,
        messages=messages,
        moved_blocks=moved_blocks,
    )


@dataclass
class Section:
    """A part of `show`: its JSON value and the lines people read."""

    title: str
    json: Any
    lines: list[str] = field(default_factory=list)


def show_sections(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None) -> dict[str, Section]:
    """Extra parts of `show`, by JSON key (blocks, children, activities, notes, SLA, deliveries)."""
    from . import content, effects, engage, queue

    sections: dict[str, Section] = {}
    for module in (content, queue, engage, effects):
        sections.update(module.show_sections(conn, case=case, wf=wf, actor=actor))
    return sections
