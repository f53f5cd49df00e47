"""Ordered, named, atomic and never destructive schema migrations.

`open_db` is the only caller. Each migration runs inside the transaction that
records it, and `PRAGMA user_version` holds how many have been applied, so a
command can tell in one cheap read whether anything is pending (sqlite-utils
is imported only when something is).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def m0001_initial(db) -> None:
    db["workflows"].create(
        {"name": str, "version": int, "definition": str, "builtin": int, "created_at": str, "created_by": str},
        pk=("name", "version"),
        not_null={"definition", "created_at"},
        defaults={"builtin": 0},
    )
    db["subjects"].create(
        {
            "id": int,
            "ref": str,
            "name": str,
            "email": str,
            "email_key": str,
            "dob": str,
            "country": str,
            "entity_type": str,
            "data": str,
            "created_at": str,
            "updated_at": str,
            "redacted_at": str,
        },
        pk="id",
        not_null={"data", "created_at", "updated_at", "entity_type"},
        defaults={"data": "{}", "entity_type": "person"},
    )
    db["subjects"].create_index(["email_key"], unique=True)
    db["subjects"].create_index(["ref"], unique=True)
    db["cases"].create(
        {
            "id": int,
            "ref": str,
            "workflow": str,
            "workflow_version": int,
            "status": str,
            "final": int,
            "subject_id": int,
            "parent_id": int,
            "data": str,
            "registry_data": str,
            "assignee": str,
            "team": str,
            "priority": str,
            "created_at": str,
            "updated_at": str,
            "due_at": str,
            "decided_at": str,
            "decision": str,
            "decision_reason": str,
            "origin": str,
            "created_by": str,
            "last_editor": str,
            "version": int,
        },
        pk="id",
        not_null={
            "workflow",
            "workflow_version",
            "status",
            "final",
            "data",
            "registry_data",
            "priority",
            "created_at",
            "updated_at",
            "origin",
            "version",
        },
        defaults={
            "final": 0,
            "data": "{}",
            "registry_data": "{}",
            "priority": "normal",
            "version": 1,
            "origin": "command",
        },
        foreign_keys=[("subject_id", "subjects", "id"), ("parent_id", "cases", "id")],
    )
    db.execute(
        "CREATE TRIGGER cases_workflow_exists BEFORE INSERT ON cases "
        "WHEN NOT EXISTS (SELECT 1 FROM workflows WHERE name = NEW.workflow AND version = NEW.workflow_version) "
        "BEGIN SELECT RAISE(ABORT, 'unknown workflow version'); END"
    )
    cases = db["cases"]
    cases.create_index(["ref"], unique=True)
    cases.create_index(["status", "workflow"])
    cases.create_index(["workflow", "status"])
    cases.create_index(["assignee", "status"])
    cases.create_index(["created_at"])
    cases.create_index(["subject_id"])
    cases.create_index(["parent_id"])
    cases.create_index(["final", "due_at"])
    db["case_tags"].create(
        {"case_id": int, "tag": str}, pk=("case_id", "tag"), foreign_keys=[("case_id", "cases", "id")]
    )
    db["case_tags"].create_index(["tag", "case_id"])
    db["blocks"].create(
        {
            "id": int,
            "case_id": int,
            "name": str,
            "kind": str,
            "status": str,
            "data": str,
            "child_case_id": int,
            "decided_by": str,
            "decided_at": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"case_id", "name", "kind", "data", "created_at", "updated_at"},
        defaults={"data": "{}"},
        foreign_keys=[("case_id", "cases", "id"), ("child_case_id", "cases", "id")],
    )
    db["blocks"].create_index(["case_id", "name"], unique=True)
    db["blocks"].create_index(["child_case_id"])
    db["documents"].create(
        {"sha256": str, "size": int, "media_type": str, "content": bytes, "created_at": str},
        pk="sha256",
        not_null={"size", "content", "created_at"},
    )
    db["attachments"].create(
        {
            "id": int,
            "case_id": int,
            "block_id": int,
            "sha256": str,
            "filename": str,
            "media_type": str,
            "size": int,
            "created_at": str,
            "created_by": str,
        },
        pk="id",
        not_null={"case_id", "sha256", "size", "created_at"},
        foreign_keys=[("case_id", "cases", "id"), ("block_id", "blocks", "id"), ("sha256", "documents", "sha256")],
    )
    db["attachments"].create_index(["case_id"])
    db["attachments"].create_index(["block_id"])
    db["activities"].create(
        {
            "id": int,
            "case_id": int,
            "type": str,
            "label": str,
            "state": str,
            "assignee": str,
            "team": str,
            "requirement": str,
            "result": str,
            "decision": str,
            "decided_by": str,
            "decided_at": str,
            "created_at": str,
            "updated_at": str,
            "created_by": str,
        },
        pk="id",
        not_null={"case_id", "type", "state", "requirement", "result", "created_at", "updated_at"},
        defaults={"requirement": "{}", "result": "{}"},
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["activities"].create_index(["case_id"])
    db["activities"].create_index(["state", "type"])
    db["activities"].create_index(["team", "state"])
    db["events"].create(
        {
            "id": int,
            "case_id": int,
            "at": str,
            "actor": str,
            "kind": str,
            "action": str,
            "from_status": str,
            "to_status": str,
            "reason": str,
            "data": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
        not_null={"case_id", "at", "actor", "kind", "data", "hash"},
        defaults={"data": "{}"},
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["events"].create_index(["case_id", "id"])
    db["events"].create_index(["at"])
    # History is append-only: no statement may rewrite or remove it.
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
    )
    db["notes"].create(
        {"id": int, "case_id": int, "at": str, "actor": str, "text": str, "private": int, "event_id": int},
        pk="id",
        not_null={"case_id", "at", "actor", "text", "private"},
        defaults={"private": 0},
        foreign_keys=[("case_id", "cases", "id"), ("event_id", "events", "id")],
    )
    db["notes"].create_index(["case_id"])
    db["views"].create(
        {"name": str, "filters": str, "builtin": int, "created_at": str, "created_by": str},
        pk="name",
        not_null={"filters", "created_at"},
        defaults={"builtin": 0},
    )
    db["outbox"].create(
        {
            "id": int,
            "case_id": int,
            "event_id": int,
            "kind": str,
            "target": str,
            "payload": str,
            "status": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "updated_at": str,
            "delivered_at": str,
            "claimed_until": str,
            "claimed_by": str,
        },
        pk="id",
        not_null={"kind", "payload", "status", "attempts", "created_at", "updated_at"},
        defaults={"status": "pending", "attempts": 0},
        foreign_keys=[("case_id", "cases", "id"), ("event_id", "events", "id")],
    )
    db["outbox"].create_index(["status", "next_attempt_at"])
    db["outbox"].create_index(["case_id"])
    db["hooks"].create(
        {"id": int, "url": str, "event": str, "workflow": str, "secret_env": str, "created_at": str, "created_by": str},
        pk="id",
        not_null={"url", "event", "created_at"},
    )
    db["settings"].create({"key": str, "value": str}, pk="key")


def m_queue(db) -> None:
    """Working the queue: the SLA clock, indexes for every list filter, full-text search."""
    cases = db["cases"]
    cases.add_column("sla_paused_at", str)  # the SLA clock stopped here (a waiting status)
    cases.add_column("sla_remaining", int)  # seconds of SLA time left when it stopped
    # One index per equality filter, so `--status X` pages in id order with no sort;
    # the composites of 0001 serve two filters combined.
    for cols in (["status"], ["workflow"], ["assignee"], ["team"], ["priority"], ["final"], ["decided_at"]):
        cases.create_index(cols)
    db.execute("CREATE INDEX idx_cases_queue ON cases (created_at) WHERE assignee IS NULL AND final = 0")
    db["subjects"].create_index(["country"])
    db.execute(
        "CREATE VIRTUAL TABLE case_search USING fts5(case_no, ref, name, email, dob, "
        "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
    )
    row_for = (
        "SELECT {id}, 'C-' || {id}, {ref}, s.name, s.email, s.dob FROM (SELECT 1) "
        "LEFT JOIN subjects s ON s.id = {subject}"
    )
    insert = "INSERT INTO case_search (rowid, case_no, ref, name, email, dob) "
    db.execute(
        "CREATE TRIGGER case_search_insert AFTER INSERT ON cases BEGIN "
        + insert
        + row_for.format(id="NEW.id", ref="NEW.ref", subject="NEW.subject_id")
        + "; END"
    )
    db.execute(
        "CREATE TRIGGER case_search_update AFTER UPDATE OF ref, subject_id ON cases BEGIN "
        "DELETE FROM case_search WHERE rowid = OLD.id; "
        + insert
        + row_for.format(id="NEW.id", ref="NEW.ref", subject="NEW.subject_id")
        + "; END"
    )
    db.execute(
        "CREATE TRIGGER case_search_delete AFTER DELETE ON cases BEGIN "
        "DELETE FROM case_search WHERE rowid = OLD.id; END"
    )
    db.execute(
        "CREATE TRIGGER case_search_subject AFTER UPDATE OF name, email, dob ON subjects BEGIN "
        "DELETE FROM case_search WHERE rowid IN (SELECT id FROM cases WHERE subject_id = NEW.id); "
        + insert
        + "SELECT c.id, 'C-' || c.id, c.ref, NEW.name, NEW.email, NEW.dob FROM cases c "
        "WHERE c.subject_id = NEW.id; END"
    )
    db.execute(
        insert + "SELECT c.id, 'C-' || c.id, c.ref, s.name, s.email, s.dob FROM cases c "
        "LEFT JOIN subjects s ON s.id = c.subject_id"
    )


def m_erasures(db) -> None:
    """A record of every erasure (redact) and retention purge: what, when, who; no personal data."""
    db["erasures"].create(
        {"id": int, "at": str, "actor": str, "kind": str, "details": str},
        pk="id",
        not_null={"at", "actor", "kind", "details"},
    )


def m_queue_counts(db) -> None:
    """Counts of open (or closed) cases per assignee, team, workflow and status read
    one index range instead of walking the whole table (stats, workload)."""
    for col in ("assignee", "team", "workflow", "status", "decided_at"):
        db["cases"].create_index(["final", col])


def m_appointments(db) -> None:
    """Appointments logged on a case (seed 004)."""
    db["appointments"].create(
        {
            "id": int,
            "case_id": int,
            "starts_at": str,
            "minutes": int,
            "title": str,
            "with_whom": str,
            "created_at": str,
            "created_by": str,
            "cancelled_at": str,
            "cancel_reason": str,
        },
        pk="id",
        not_null={"case_id", "starts_at", "minutes", "title", "created_at", "created_by"},
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["appointments"].create_index(["case_id", "starts_at"])
    db["appointments"].create_index(["starts_at"])


def m_drop_redundant_case_index(db) -> None:
    """(workflow, status) serves nothing (status, workflow) and (workflow) do not: one
    index fewer to update on every case insert. (final) stays: it pages the open
    cases in id order, which the (final, x) indexes cannot."""
    db.execute("DROP INDEX IF EXISTS idx_cases_workflow_status")


def m_decided_by(db) -> None:
    """Who decided a case: every case in a final status has a decision, a decider and a time.
    Cases decided before this migration get the actor of the event that brought them there."""
    db["cases"].add_column("decided_by", str)
    db.execute(
        "UPDATE cases SET decided_by = (SELECT e.actor FROM events e WHERE e.case_id = cases.id "
        "AND e.to_status = cases.status ORDER BY e.id DESC LIMIT 1) WHERE final = 1"
    )
    db.execute("UPDATE cases SET decision = status WHERE final = 1 AND decision IS NULL")


def m_case_search_batches(db) -> None:
    """New cases in batches get their search rows from one INSERT ... SELECT (store.bulk.search_rows_later)
    instead of one trigger run per row: while case_search_deferred holds a row (only ever inside
    that writer's own transaction) the insert trigger stands aside. The rows are the same; every
    other connection sees the table empty."""
    db.execute("CREATE TABLE case_search_deferred (id INTEGER PRIMARY KEY)")
    db.execute("DROP TRIGGER case_search_insert")
    db.execute(
        "CREATE TRIGGER case_search_insert AFTER INSERT ON cases "
        "WHEN NOT EXISTS (SELECT 1 FROM case_search_deferred) BEGIN "
        "INSERT INTO case_search (rowid, case_no, ref, name, email, dob) "
        "SELECT NEW.id, 'C-' || NEW.id, NEW.ref, s.name, s.email, s.dob FROM (SELECT 1) "
        "LEFT JOIN subjects s ON s.id = NEW.subject_id; END"
    )


def m_keyed_chain(db) -> None:
    """The keyed chain (see store/chain.py): every event re-sealed with HMAC-SHA256 under a key
    kept outside the database (made here, as `init` does), each case's chain head and the
    database's seal; events carry the login of the account that wrote them; personal free text
    moves beside the hashed event (`event_texts`), so erasure can blank it.

    The old plain-sha256 chain is verified first: where it was already broken, that is kept
    (`chain_v1_breaks`) and `db check` goes on naming it, instead of sealing over it."""
    import json

    from . import chain
    from . import events as event_store

    conn = db.conn
    db["events"].add_column("login", str)
    db["events"].add_column("text_hash", str)
    conn.execute(
        "CREATE TABLE event_texts (event_id INTEGER PRIMARY KEY REFERENCES events(id), "
        "fields TEXT NOT NULL, salt TEXT, body TEXT, erased_at TEXT)"
    )
    conn.execute(
        "CREATE TABLE chain_heads (case_id INTEGER PRIMARY KEY, events INTEGER NOT NULL, last_event INTEGER NOT NULL, "
        "last_at TEXT NOT NULL, head TEXT NOT NULL, purged_at TEXT, mac TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE chain_seal (id INTEGER PRIMARY KEY CHECK (id = 1), last_case INTEGER NOT NULL, "
        "last_event INTEGER NOT NULL, mac TEXT NOT NULL)"
    )
    key = chain.make_key(conn)
    now = _utc_now()
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    breaks: list[list] = []
    rows = conn.execute(
        "SELECT id, case_id, at, actor, kind, action, from_status, to_status, reason, data, prev_hash, hash "
        "FROM events ORDER BY case_id, id"
    ).fetchall()
    updates: list[tuple] = []
    texts: list[tuple] = []
    heads: dict[int, tuple[int, int, str, str]] = {}
    old_prev = ""
    case = None
    for r in rows:
        event_id, case_id, at, actor, kind, action, frm, to, reason, data_text, prev_hash, old_hash = tuple(r)
        if case_id != case:
            case, old_prev = case_id, ""
            broken = False
        if not broken and (
            (prev_hash or "") != old_prev
            or _v1_hash(old_prev, case_id, at, actor, kind, action, frm, to, reason, data_text) != old_hash
        ):
            breaks.append([case_id, event_id])
            broken = True
        old_prev = old_hash
        data = json.loads(data_text) if data_text else {}
        public, private = event_store.split_private(reason, data)
        public_json = event_store._DATA_JSON(public) if public else "{}"
        text_hash = None
        if private:
            salt, body, text_hash, fields = event_store.seal_text(private)
            texts.append((event_id, fields, salt, body))
        n, _, _, head = heads.get(case_id, (0, 0, "", ""))
        h = event_store.event_mac(
            key, event_id, head, case_id, at, actor, None, kind, action, frm, to, public_json, text_hash
        )
        updates.append((public_json, text_hash, head, h, event_id))
        heads[case_id] = (n + 1, event_id, at, h)
    conn.executemany(
        "UPDATE events SET data = ?, reason = NULL, text_hash = ?, prev_hash = ?, hash = ? WHERE id = ?", updates
    )
    conn.executemany("INSERT INTO event_texts (event_id, fields, salt, body) VALUES (?, ?, ?, ?)", texts)
    for _, sql in triggers:
        conn.execute(sql)
    last_case = conn.execute("SELECT coalesce(max(id), 0) FROM cases").fetchone()[0]
    last_event = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    existing = {r[0] for r in conn.execute("SELECT id FROM cases")}
    head_rows = []
    for case_id in range(1, last_case + 1):
        n, last, at, h = heads.get(case_id, (0, 0, "", ""))
        # An id below the last that no case has was purged before the keyed chain: a tombstone.
        purged = None if case_id in existing else now
        head_rows.append((case_id, n, last, at, h, purged, chain.head_mac(key, case_id, n, last, at, h, purged)))
    conn.executemany(
        "INSERT INTO chain_heads (case_id, events, last_event, last_at, head, purged_at, mac) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        head_rows,
    )
    chain.write_seal(conn, key, last_case, last_event)
    if breaks:
        conn.execute("INSERT INTO settings (key, value) VALUES ('chain_v1_breaks', ?)", (json.dumps(breaks),))


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _v1_hash(prev, case_id, at, actor, kind, action, frm, to, reason, data) -> str:
    """The chain before 0009: plain sha256 over the event's public fields."""
    import hashlib
    import json

    payload = json.dumps(
        [prev, case_id, at, actor, kind, action, frm, to, reason, data], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def m_documents_content_last(db) -> None:
    """documents.content last, so a new document's zeroblob is never built in memory
    (SQLite builds a zeroblob that is followed by another column's value)."""
    rebuild_content_last(db.conn)


def content_is_last(conn: sqlite3.Connection) -> bool:
    """Whether `content` is the table's last column: only then is a new document's `zeroblob(n)`
    written without being built in memory (SQLite expands a zero-blob that has data after it)."""
    return [r[1] for r in conn.execute("PRAGMA table_info(documents)")][-1] == "content"


_COLUMNS_CONTENT_LAST = (
    '("sha256" TEXT PRIMARY KEY, "size" INTEGER NOT NULL, "media_type" TEXT, "created_at" TEXT NOT NULL, '
    '"content" BLOB NOT NULL)'
)
_COPY = (
    "(rowid, sha256, size, media_type, created_at, content) SELECT rowid, sha256, size, media_type, created_at, content"
)


def rebuild_content_last(conn: sqlite3.Connection) -> None:
    """The body of a migration that moves `content` to the end of `documents` (a no-op when it is
    there already), so that attaching a large document keeps memory flat. Runs inside the
    migration's transaction, with foreign keys on: they cannot be switched off there, and renaming
    `documents` away would re-point `attachments` at the old name. So the rows are copied aside,
    the table is dropped and made again, and the rows (with their rowids) copied back; the foreign
    key checks wait for the commit (defer_foreign_keys), by when every attachment's document is
    back, or the commit fails and nothing changed."""
    if content_is_last(conn):
        return
    conn.execute(f'CREATE TABLE "documents_content_last" {_COLUMNS_CONTENT_LAST}')
    conn.execute(f"INSERT INTO documents_content_last {_COPY} FROM documents ORDER BY rowid")
    conn.execute("PRAGMA defer_foreign_keys = ON")  # until this transaction ends
    conn.execute("DROP TABLE documents")
    conn.execute(f'CREATE TABLE "documents" {_COLUMNS_CONTENT_LAST}')
    conn.execute(f"INSERT INTO documents {_COPY} FROM documents_content_last ORDER BY rowid")
    conn.execute("DROP TABLE documents_content_last")


def m_users(db) -> None:
    """Users and their roles: an action that names `roles` is open only to users holding one."""
    db.conn.execute(
        "CREATE TABLE users (name TEXT PRIMARY KEY, roles TEXT NOT NULL DEFAULT '[]', "
        "created_at TEXT NOT NULL, created_by TEXT)"
    )


def m_routines(db) -> None:
    """Routines: when a case entered its status (cases.status_since, for `list --in-status-for`
    and for finding the cases a routine is due on), and each routine's firing per case and
    entry (routine_runs: once fired, never again for that entry; a failed try is retried)."""
    conn = db.conn
    conn.execute("ALTER TABLE cases ADD COLUMN status_since TEXT")
    conn.execute(
        "UPDATE cases SET status_since = coalesce((SELECT max(e.at) FROM events e WHERE e.case_id = cases.id "
        "AND e.to_status = cases.status AND (e.from_status IS NULL OR e.from_status != e.to_status)), created_at)"
    )
    conn.execute("CREATE INDEX idx_cases_status_since ON cases (status, status_since)")
    conn.execute(
        "CREATE TABLE routine_runs (case_id INTEGER NOT NULL REFERENCES cases(id), routine TEXT NOT NULL, "
        "entered INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "last_error TEXT, event_id INTEGER, at TEXT NOT NULL, PRIMARY KEY (case_id, routine, entered))"
    )


# Append only. Never edit or reorder a migration that has shipped.
MIGRATIONS: list[tuple[str, Callable]] = [
    ("0001_initial", m0001_initial),
    ("0002_queue", m_queue),
    ("0003_erasures", m_erasures),
    ("0004_queue_counts", m_queue_counts),
    ("0005_appointments", m_appointments),
    ("0006_drop_redundant_case_index", m_drop_redundant_case_index),
    ("0007_decided_by", m_decided_by),
    ("0008_case_search_batches", m_case_search_batches),
    ("0009_keyed_chain", m_keyed_chain),
    ("0010_documents_content_last", m_documents_content_last),
    ("0011_users", m_users),
    ("0012_routines", m_routines),
]

# Each migration after the PostgreSQL baseline (store/pg_schema.py, BASELINE_VERSION) says its
# PostgreSQL SQL here, under the same name; tests/test_postgres.py checks that none is missing.
PG_MIGRATIONS: dict[str, str] = {}
