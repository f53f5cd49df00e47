"""Saved views: named filters (seed 000's filters sidebar)."""

from __future__ import annotations

import json
import sqlite3


def get(conn: sqlite3.Connection, name: str) -> dict | None:
    row = conn.execute("SELECT * FROM views WHERE name = ?", (name,)).fetchone()
    return _row(row) if row else None


def list_(conn: sqlite3.Connection) -> list[dict]:
    return [_row(r) for r in conn.execute("SELECT * FROM views ORDER BY name")]


def save(conn: sqlite3.Connection, name: str, filters: dict, *, at: str, actor: str, builtin: bool = False) -> None:
    conn.execute(
        "INSERT INTO views (name, filters, builtin, created_at, created_by) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET filters = excluded.filters, created_at = excluded.created_at, "
        "created_by = excluded.created_by",
        (name, json.dumps(filters, sort_keys=True), int(builtin), at, actor),
    )


def delete(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("DELETE FROM views WHERE name = ?", (name,)).rowcount > 0


def _row(r: sqlite3.Row) -> dict:
    d = dict(r)
    d["filters"] = json.loads(d["filters"])
    return d
