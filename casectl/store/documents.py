"""Documents, in SQL: bytes stored once under their sha256, and the attachments that name them.

A document's bytes go in and come out in chunks (SQLite's incremental blob I/O: a `zeroblob(n)`
row written through `Connection.blobopen`), so a large one never sits whole in memory.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from .db import inserted_id
from .dialect import dialect

CHUNK = 1 << 20  # bytes per read or write of a document's blob


def put_document(conn: sqlite3.Connection, *, sha256: str, content: bytes, media_type: str | None, at: str) -> bool:
    """Store the bytes once under their sha256; returns whether they were new."""
    return put_document_chunks(conn, sha256=sha256, size=len(content), chunks=[content], media_type=media_type, at=at)


def put_document_chunks(
    conn: sqlite3.Connection, *, sha256: str, size: int, chunks: Iterable[bytes], media_type: str | None, at: str
) -> bool:
    """Store `size` bytes, given in chunks, once under their sha256; returns whether they were new.

    The chunks are only read when the document is new. They must add up to exactly `size` bytes
    (ValueError otherwise); that they hash to `sha256` is the caller's to check, inside the same
    transaction, so that a file that changed on the way rolls back.

    On PostgreSQL the bytes go in through COPY, hex-encoded a chunk at a time (store/pg.py).
    """
    if dialect(conn) == "postgresql":
        from . import pg

        if conn.execute("SELECT 1 FROM documents WHERE sha256 = ?", (sha256,)).fetchone():
            return False
        pg.copy_document(conn, sha256=sha256, size=size, chunks=chunks, media_type=media_type, at=at)  # type: ignore[arg-type]
        return True
    cur = conn.execute(
        "INSERT OR IGNORE INTO documents (sha256, size, media_type, content, created_at) "
        "VALUES (?, ?, ?, zeroblob(?), ?)",
        (sha256, size, media_type, size, at),
    )
    if cur.rowcount != 1:
        return False
    written = 0
    with conn.blobopen("documents", "content", inserted_id(cur)) as blob:
        for chunk in chunks:
            if written + len(chunk) > size:
                raise ValueError(f"the document is longer than the {size} bytes announced")
            blob.write(chunk)
            written += len(chunk)
    if written != size:
        raise ValueError(f"the document has {written} bytes, not the {size} announced")
    return True


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
    """A document's bytes, whole (for small ones; `document_chunks` streams)."""
    r = conn.execute("SELECT content FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
    return bytes(r[0]) if r else None


def document_chunks(conn: sqlite3.Connection, sha256: str, *, chunk_size: int = CHUNK) -> Iterator[bytes] | None:
    """A document's bytes in chunks, read from the blob as they are asked for; None when there is
    no such document. (The bytes are as stored: hashing them is the reader's check.)"""
    if dialect(conn) == "postgresql":
        r = conn.execute("SELECT length(content) FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
        return None if r is None else _pg_chunks(conn, sha256, r[0], chunk_size)
    r = conn.execute("SELECT rowid, typeof(content) FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
    if r is None:
        return None
    if r[1] != "blob":  # damaged by hand: text or NULL cannot be opened as a blob
        return iter((_as_bytes(conn, r[0]),))
    return _blob_chunks(conn, r[0], chunk_size)


def _pg_chunks(conn: sqlite3.Connection, sha256: str, length: int, chunk_size: int) -> Iterator[bytes]:
    """Slices of a bytea read one at a time (stored EXTERNAL: each slice reads only its pages)."""
    for offset in range(0, length, chunk_size):
        row = conn.execute(
            "SELECT substring(content FROM ? FOR ?) FROM documents WHERE sha256 = ?", (offset + 1, chunk_size, sha256)
        ).fetchone()
        yield bytes(row[0])


def _blob_chunks(conn: sqlite3.Connection, rowid: int, chunk_size: int) -> Iterator[bytes]:
    with conn.blobopen("documents", "content", rowid, readonly=True) as blob:
        while chunk := blob.read(chunk_size):
            yield chunk


def _as_bytes(conn: sqlite3.Connection, rowid: int) -> bytes:
    value = conn.execute("SELECT content FROM documents WHERE rowid = ?", (rowid,)).fetchone()[0]
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value or b"")


def corrupt_documents(conn: sqlite3.Connection) -> Iterator[tuple[str, str]]:
    """(sha256, problem) for every stored document whose bytes do not hash to its key, or whose
    recorded size is not its length; each is read in chunks, so memory stays flat."""
    if dialect(conn) == "postgresql":
        listed = conn.execute("SELECT sha256, size, length(content) FROM documents ORDER BY sha256").fetchall()
        for sha256, size, length in listed:
            h = hashlib.sha256()
            for chunk in _pg_chunks(conn, sha256, length, CHUNK):
                h.update(chunk)
            yield from _problem(sha256, size, length, h.hexdigest())
        return
    rows = conn.execute(
        "SELECT rowid, sha256, size, typeof(content), length(content) FROM documents ORDER BY rowid"
    ).fetchall()
    for rowid, sha256, size, kind, length in rows:
        if kind != "blob":
            yield sha256, f"its content is stored as {kind}, not as bytes"
            continue
        h = hashlib.sha256()
        for chunk in _blob_chunks(conn, rowid, CHUNK):
            h.update(chunk)
        yield from _problem(sha256, size, length, h.hexdigest())


def _problem(sha256: str, size: int, length: int, actual: str) -> Iterator[tuple[str, str]]:
    if actual != sha256:
        yield sha256, f"its content does not match its sha256 (the {length} bytes stored hash to {actual})"
    elif length != size:
        yield sha256, f"its recorded size is {size} bytes, but {length} bytes are stored"


def document_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM documents").fetchone()[0]
