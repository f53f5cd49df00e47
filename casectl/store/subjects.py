"""Subjects: the people and companies cases are about, kept once and reused."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .db import inserted_id

SUBJECT_COLUMNS = ("ref", "name", "email", "dob", "country", "entity_type")


def email_key(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def find(conn: sqlite3.Connection, *, email: str | None = None, ref: str | None = None) -> dict | None:
    row = None
    if ref:
        row = conn.execute("SELECT * FROM subjects WHERE ref = ?", (ref,)).fetchone()
    if row is None and email:
        row = conn.execute("SELECT * FROM subjects WHERE email_key = ?", (email_key(email),)).fetchone()
    return _row(row) if row else None


def get(conn: sqlite3.Connection, subject_id: int) -> dict | None:
    row = conn.execute("SELECT * FROM subjects WHERE id = ?", (subject_id,)).fetchone()
    return _row(row) if row else None


def insert(conn: sqlite3.Connection, fields: dict[str, Any], *, at: str) -> int:
    cur = conn.execute(
        "INSERT INTO subjects (ref, name, email, email_key, dob, country, entity_type, data, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            fields.get("ref"),
            fields.get("name"),
            fields.get("email"),
            email_key(fields.get("email")),
            fields.get("dob"),
            fields.get("country"),
            fields.get("entity_type") or "person",
            json.dumps(fields.get("data") or {}),
            at,
            at,
        ),
    )
    return inserted_id(cur)


def update(conn: sqlite3.Connection, subject_id: int, changes: dict[str, Any], *, at: str) -> None:
    cols = [c for c in changes if c in SUBJECT_COLUMNS]
    if not cols:
        return
    sets = ", ".join(f"{c} = ?" for c in cols)
    params = [changes[c] for c in cols]
    if "email" in cols:
        sets += ", email_key = ?"
        params.append(email_key(changes["email"]))
    conn.execute(f"UPDATE subjects SET {sets}, updated_at = ? WHERE id = ?", (*params, at, subject_id))


def list_(conn: sqlite3.Connection, *, limit: int | None = None, query: str | None = None) -> list[dict]:
    sql = "SELECT s.*, (SELECT count(*) FROM cases c WHERE c.subject_id = s.id) AS case_count FROM subjects s"
    params: list[Any] = []
    if query:
        sql += " WHERE s.name LIKE ? OR s.email_key LIKE ? OR s.ref = ?"
        params += [f"%{query}%", f"%{query.lower()}%", query]
    sql += " ORDER BY s.id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [_row(r) for r in conn.execute(sql, params)]


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d.pop("email_key", None)
    d["data"] = json.loads(d["data"]) if d.get("data") else {}
    return d
