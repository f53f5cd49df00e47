"""Side effects of case changes, written to the outbox in the same transaction.

(Filled in by the "outside world" work; the foundation only needs the hooks.)
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..rules import Workflow


def on_event(conn: sqlite3.Connection, event_type: str, *, case_id: int, wf: Workflow, event_id: int,
             action: str | None, now: datetime) -> None:
    """Queue the webhooks, emails and CRM calls subscribed to `event_type`."""


def on_transition(conn: sqlite3.Connection, *, case_id: int, wf: Workflow, action: str | None, from_status: str,
                  to_status: str, event_id: int, messages: tuple[str, ...], moved_blocks: list[dict],
                  reason: str | None, decision: str | None, now: datetime) -> None:
    """Queue the action's declared effects and messages (e.g. the re-upload email)."""


def show_sections(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None) -> dict:
    """Parts of `show` (key -> hooks.Section)."""
    return {}
