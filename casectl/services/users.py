"""`casectl users`: who may perform the actions a workflow limits to roles."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

from ..errors import InvalidInput, NotFound
from ..store import read, write
from ..store import users as user_store
from ..timeutil import iso

_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")


def _checked(name: str, roles: list[str]) -> None:
    if not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name) or len(name) > 128:
        raise InvalidInput(f"user name {name!r}: give the name agents act as (--actor / CASECTL_ACTOR)")
    for role in roles:
        if not _ROLE.match(role) or len(role) > 64:
            raise InvalidInput(f"role {role!r}: lower-case letters, digits and _, starting with a letter")


def add(conn: sqlite3.Connection, name: str, roles: list[str], *, actor: str, now: datetime) -> dict[str, Any]:
    _checked(name, roles)
    with write(conn):
        user_store.put(conn, name, roles, at=iso(now), actor=actor)
        return {"name": name, "roles": sorted(user_store.roles_of(conn, name))}


def remove(conn: sqlite3.Connection, name: str, roles: list[str]) -> dict[str, Any]:
    with write(conn):
        if not user_store.remove(conn, name, roles or None):
            raise NotFound(f"no user '{name}' (see `casectl users list`)")
        return {"name": name, "removed": sorted(roles) if roles else "user"}


def list_users(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    with read(conn):
        return user_store.all_users(conn)
