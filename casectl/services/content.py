"""What a case holds: blocks, documents, KYC child cases and activities.

(Filled in by the "inside a case" work; the foundation only needs the hooks.)
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from ..rules import Workflow


def on_create(conn: sqlite3.Connection, *, case_id: int, wf: Workflow, nc: Any, actor: str, now: datetime) -> None:
    """Create the case's initial blocks and the activities its workflow requires."""


def on_transition(conn: sqlite3.Connection, *, case_id: int, wf: Workflow, from_status: str, to_status: str,
                  actor: str, now: datetime) -> None:
    """A child case reaching a final status is a system event on its parent."""


def show_sections(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None) -> dict:
    """Parts of `show` (key -> hooks.Section)."""
    return {}
