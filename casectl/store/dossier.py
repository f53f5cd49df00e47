"""Read-only queries behind the case dossier: a case's blocks, activities,
notes and attachments, in the order they were added.

Other commands own writing these rows; these queries only read the 0001
columns and decode JSON leniently, so a row written by any version of those
commands still prints.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def _json(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text  # not JSON: show it as it is


def blocks(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT b.id, b.name, b.kind, b.status, b.data, b.child_case_id, b.decided_by, b.decided_at, "
        "b.created_at, b.updated_at, ch.status AS child_status "
        "FROM blocks b LEFT JOIN cases ch ON ch.id = b.child_case_id WHERE b.case_id = ? ORDER BY b.id",
        (case_id,),
    )
    return [{**dict(r), "data": _json(r["data"])} for r in rows]


def activities(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, type, label, state, assignee, team, requirement, result, decision, decided_by, decided_at, "
        "created_at, updated_at, created_by FROM activities WHERE case_id = ? ORDER BY id",
        (case_id,),
    )
    return [{**dict(r), "requirement": _json(r["requirement"]), "result": _json(r["result"])} for r in rows]


def notes(conn: sqlite3.Connection, case_id: int, *, include_private: bool) -> list[dict[str, Any]]:
    sql = "SELECT id, at, actor, text, private FROM notes WHERE case_id = ?"
    if not include_private:
        sql += " AND private = 0"
    return [dict(r) for r in conn.execute(sql + " ORDER BY at, id", (case_id,))]


def private_note_count(conn: sqlite3.Connection, case_id: int) -> int:
    return conn.execute("SELECT count(*) FROM notes WHERE case_id = ? AND private != 0", (case_id,)).fetchone()[0]


def attachments(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT a.id, a.filename, a.media_type, a.size, a.sha256, a.created_at, a.created_by, "
        "b.name AS block_name FROM attachments a LEFT JOIN blocks b ON b.id = a.block_id "
        "WHERE a.case_id = ? ORDER BY a.id",
        (case_id,),
    )
    return [dict(r) for r in rows]
