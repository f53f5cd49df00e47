"""Working the queue: assignment, notes, SLA clock, views, search, stats.

(Filled in by the "working the queue" work; the foundation only needs the hooks.)
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..rules import Workflow


def on_create(conn: sqlite3.Connection, *, case_id: int, wf: Workflow, actor: str, now: datetime) -> None:
    """Start the SLA clock (due_at) of a new case."""


def on_transition(conn: sqlite3.Connection, *, case_id: int, wf: Workflow, from_status: str, to_status: str,
                  now: datetime) -> None:
    """Pause or resume the SLA clock when a case enters or leaves a waiting status."""


def show_sections(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None) -> dict:
    """Parts of `show` (key -> hooks.Section)."""
    return {}
