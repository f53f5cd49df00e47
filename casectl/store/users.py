"""The people who work cases on this database, and their roles (for workflows' `roles`)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def put(conn: sqlite3.Connection, name: str, roles: list[str], *, at: str, actor: str) -> None:
    """Add a user, or add roles to one already there."""
    row = conn.execute("SELECT roles FROM users WHERE name = ?", (name,)).fetchone()
    known = json.loads(row[0]) if row else []
    merged = sorted(set(known) | set(roles))
    conn.execute(
        "INSERT INTO users (name, roles, created_at, created_by) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET roles = excluded.roles",
        (name, json.dumps(merged), at, actor),
    )


def remove(conn: sqlite3.Connection, name: str, roles: list[str] | None = None) -> bool:
    """Remove a user (or only some of their roles); False when there was no such user."""
    row = conn.execute("SELECT roles FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        return False
    if roles:
        left = sorted(set(json.loads(row[0])) - set(roles))
        conn.execute("UPDATE users SET roles = ? WHERE name = ?", (json.dumps(left), name))
    else:
        conn.execute("DELETE FROM users WHERE name = ?", (name,))
    return True


def all_users(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {**dict(r), "roles": json.loads(r["roles"])}
        for r in conn.execute("SELECT name, roles, created_at, created_by FROM users ORDER BY name")
    ]


def roles_of(conn: sqlite3.Connection, name: str | None) -> frozenset[str]:
    if not name:
        return frozenset()
    row = conn.execute("SELECT roles FROM users WHERE name = ?", (name,)).fetchone()
    return frozenset(json.loads(row[0])) if row else frozenset()
