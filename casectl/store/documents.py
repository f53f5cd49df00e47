"""Documents, in SQL: bytes stored once under their sha256, and the attachments that name them."""

from __future__ import annotations

import sqlite3
from typing import Any

from .db import inserted_id


def put_document(conn: sqlite3.Connection, *, sha256: str, content: bytes, media_type: str | None, at: str) -> bool:
    """Store the bytes once under their sha256; returns whether they were new."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO documents (sha256, size, media_type, content, created_at) VALUES (?, ?, ?, ?, ?)",
        (sha256, len(content), media_type, content, at),
    )
    return cur.rowcount == 1


def insert_attachment(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    block_id: int,
    sha256: str,
    filename: str,
    media_type: str | None,
    size: int,
    at: str,
    actor: str,
) -> int:
    cur = conn.execute(
        "INSERT INTO attachments (case_id, block_id, sha256, filename, media_type, size, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (case_id, block_id, sha256, filename, media_type, size, at, actor),
    )
    return inserted_id(cur)


def attachments(conn: sqlite3.Connection, block_id: int) -> list[dict[str, Any]]:
    """A block's attachments, oldest first (the last one is the current document)."""
    return [dict(r) for r in conn.execute("SELECT * FROM attachments WHERE block_id = ? ORDER BY id", (block_id,))]


def latest_attachment(conn: sqlite3.Connection, block_id: int) -> dict[str, Any] | None:
    r = conn.execute("SELECT * FROM attachments WHERE block_id = ? ORDER BY id DESC LIMIT 1", (block_id,)).fetchone()
    return dict(r) if r else None


def document_content(conn: sqlite3.Connection, sha256: str) -> bytes | None:
    r = conn.execute("SELECT content FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
    return bytes(r[0]) if r else None


def document_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM documents").fetchone()[0]
