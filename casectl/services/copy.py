"""`casectl db copy SRC DST`: a whole database from one backend to the other (or the same).

Every row of every table goes across with its id, in one transaction on the target: cases,
subjects, tags, blocks, activities, events (their keyed chain, heads and seal unchanged:
the chain key is the source's, found the same way), notes, documents (streamed), outbox,
hooks, views, users, routine runs, settings. The search index is rebuilt on the target by
its own means. The target must hold no work: a fresh `init`, or nothing at all (it is
created); a second run is refused. `db check` runs on the target before the command says
it is done.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import Conflict
from ..store import bulk, copying, documents, read, write

# Parents before children, so every foreign key finds its row.
TABLES = (
    "workflows",
    "settings",
    "subjects",
    "cases",
    "case_tags",
    "blocks",
    "activities",
    "events",
    "event_texts",
    "chain_heads",
    "chain_seal",
    "notes",
    "attachments",
    "outbox",
    "hooks",
    "views",
    "erasures",
    "appointments",
    "users",
    "routine_runs",
)
# Work a target may not hold already.
_WORK = ("subjects", "cases", "events", "outbox", "documents", "hooks", "users", "erasures", "notes")


def copy(src: sqlite3.Connection, dst: sqlite3.Connection, *, src_name: str, dst_name: str) -> dict[str, Any]:
    from . import integrity

    counts: dict[str, int] = {}
    with write(dst):
        busy = [t for t in _WORK if copying.count(dst, t)]
        if busy or copying.custom_rows(dst):
            raise Conflict(
                f"{dst_name} already holds cases or other work ({', '.join(busy) or 'custom workflows or views'}); "
                "db copy writes only into an empty database"
            )
        copying.clear_for_copy(dst)
        with read(src), bulk.search_rows_later(dst):
            for table in TABLES:
                if table == "attachments":  # the documents they name first
                    counts["documents"] = _copy_documents(src, dst)
                columns = copying.common_columns(src, dst, table)
                n = 0
                for rows in copying.batches(src, table, columns):
                    bulk.insert_rows(dst, table, columns, rows)
                    n += len(rows)
                counts[table] = n
        dst.chain_key = None  # type: ignore[attr-defined]  # the source's key now, by the copied settings
    result = integrity.check(dst)
    return {
        "from": src_name,
        "to": dst_name,
        "copied": counts,
        "check": {"ok": result["ok"], "problems": result["problems"]},
    }


def _copy_documents(src: sqlite3.Connection, dst: sqlite3.Connection) -> int:
    n = 0
    for sha256, size, media_type, created_at in copying.document_list(src):
        chunks = documents.document_chunks(src, sha256) or iter(())
        documents.put_document_chunks(
            dst, sha256=sha256, size=size, chunks=chunks, media_type=media_type, at=created_at
        )
        n += 1
    return n
