"""Workflow definitions by (name, version): built-ins are recorded on first
use, so every case can always be judged by the version it was created with."""

from __future__ import annotations

import json
import sqlite3


def get(conn: sqlite3.Connection, name: str, version: int | None = None) -> dict | None:
    if version is None:
        row = conn.execute("SELECT * FROM workflows WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
    else:
        row = conn.execute("SELECT * FROM workflows WHERE name = ? AND version = ?", (name, version)).fetchone()
    return _row(row) if row else None


def save(conn: sqlite3.Connection, definition: dict, *, builtin: bool, at: str, actor: str | None) -> None:
    """Record a definition unless that version is there (looked up first: on PostgreSQL an agent's
    role may not insert workflows at all, and a built-in already recorded needs no right)."""
    found = conn.execute(
        "SELECT 1 FROM workflows WHERE name = ? AND version = ?", (definition["name"], definition["version"])
    ).fetchone()
    if found:
        return
    conn.execute(
        "INSERT OR IGNORE INTO workflows (name, version, definition, builtin, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (definition["name"], definition["version"], json.dumps(definition, sort_keys=True), int(builtin), at, actor),
    )


def latest_all(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute(
        "SELECT w.* FROM workflows w WHERE w.version = (SELECT max(version) FROM workflows v WHERE v.name = w.name) "
        "ORDER BY w.name"
    )
    return [_row(r) for r in rows]


def versions(conn: sqlite3.Connection, name: str) -> list[dict]:
    return [_row(r) for r in conn.execute("SELECT * FROM workflows WHERE name = ? ORDER BY version", (name,))]


def _row(r: sqlite3.Row) -> dict:
    d = dict(r)
    d["definition"] = json.loads(d["definition"])
    return d
