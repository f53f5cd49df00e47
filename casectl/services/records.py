"""What the lifecycle kernel hands its followers, and what they hand back.

The kernel (`services.lifecycle`) writes a change and describes it in one
frozen record: `Created` for a new case, `Transition` for a status change.
Each follower (the SLA clock, the outbox effects, child cases) receives the
record and returns follow-ups: `Fire` a system action on a case, `Advance` a
case (fire its automatic actions), `StartCase` (a child case). The kernel
carries them out in the same transaction. Followers import this module,
never the kernel, so the dependency runs one way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..rules import Message, Workflow


@dataclass(kw_only=True)
class NewCase:
    """A case to create, as `create` and `import` describe it."""

    workflow: str
    ref: str | None = None
    subject_name: str | None = None
    subject_email: str | None = None
    subject_dob: str | None = None
    subject_ref: str | None = None
    country: str | None = None
    entity_type: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    registry_data: dict[str, Any] = field(default_factory=dict)
    assignee: str | None = None
    team: str | None = None
    tags: list[str] = field(default_factory=list)
    priority: str = "normal"
    status: str | None = None
    origin: str = "command"
    parent_id: int | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    # The subject to attach the case to, when the caller already knows it (a new KYC flow for the same person).
    subject_id: int | None = None
    # When the email (or subject ref) names a subject whose name, date of birth or entity type
    # differ from this case's: "existing" attaches the case to that subject anyway, "new" makes
    # another subject; None refuses (exit 5), naming both.
    subject_match: str | None = None


@dataclass(frozen=True, kw_only=True)
class Created:
    """A case was inserted, with its `created` event."""

    case_id: int
    workflow: Workflow
    status: str
    event_id: int
    at: datetime
    actor: str
    new_case: NewCase


@dataclass(frozen=True, kw_only=True)
class Transition:
    """A case moved from one status to another (or performed an action that records one)."""

    case_id: int
    workflow: Workflow
    action: str | None
    # action (an agent's), system (an event or an automatic action), status (set directly)
    kind: str
    from_status: str
    to_status: str
    event_id: int
    at: datetime
    actor: str
    moved_blocks: tuple[Mapping[str, Any], ...] = ()
    decision: str | None = None
    reason: str | None = None
    messages: tuple[Message, ...] = ()
    parent_id: int | None = None

    @property
    def settles(self) -> bool:
        """The case reached a final status with this change."""
        return self.workflow.is_final(self.to_status) and not self.workflow.is_final(self.from_status)

    def sends(self, kind: str) -> bool:
        return any(m.kind == kind for m in self.messages)


@dataclass(frozen=True, kw_only=True)
class Fire:
    """Perform system action `action` on case `case_id` (e.g. withdraw an open child)."""

    case_id: int
    action: str
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Advance:
    """Fire case `case_id`'s automatic actions whose guards now hold."""

    case_id: int


@dataclass(frozen=True, kw_only=True)
class StartCase:
    """Create a case (a child); `then` receives the new case's id and may return more follow-ups."""

    new_case: NewCase
    event_data: Mapping[str, Any] = field(default_factory=dict)
    then: Callable[[sqlite3.Connection, int], Sequence[FollowUp]] | None = None


FollowUp = Fire | Advance | StartCase
