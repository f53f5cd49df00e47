"""The keyed chain: forgeries by someone holding the database but not the key are named by
`db check`; rewrites by someone holding both are named by `db check --anchor`; ids are never
reused; events keep time order; every event records the OS login; the key lives outside."""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from casectl.store import chain
from casectl.store import events as event_store

from conftest import raw_connect, snapshot

WRONG_KEY = chain.Key(b"an attacker's guess at the key, 64 characters long.............", "guess")


def source() -> chain.KeySource:
    return chain.KeySource.from_environ(os.environ)


def open_raw(db):
    """The test's database below casectl, each statement its own transaction (as a forger's shell)."""
    conn = raw_connect(db)
    if not is_pg(conn):
        conn.isolation_level = None
    return conn


def is_pg(conn) -> bool:
    return getattr(conn, "dialect", "sqlite") == "postgresql"


@contextmanager
def tampering(conn) -> Iterator[None]:
    """History's append-only guard out of the way while a forger edits it: SQLite's triggers dropped
    and made again; on PostgreSQL the update trigger disabled and deletes allowed as a purge allows
    them (casectl.purging), in one transaction."""
    if not is_pg(conn):
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("DROP TRIGGER events_no_delete")
        yield
        conn.execute("CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'x'); END")
        conn.execute("CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'x'); END")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update")
        conn.execute("SET LOCAL casectl.purging = 'on'")
        yield
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_update")
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def script(conn, sql: str) -> None:
    """Several statements (none with a `;` in a literal), as the sqlite3 shell runs them."""
    if not is_pg(conn):
        conn.executescript(sql)
        return
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def reseal(conn, key: chain.Key) -> None:
    """What a forger does after editing rows: recompute every event's hash, every text hash,
    every chain head and the seal, the way casectl computes them, with the key given
    (inside tampering())."""
    heads: dict[int, tuple[int, int, str, str]] = {}
    for r in conn.execute(
        "SELECT e.*, t.salt, t.body FROM events e LEFT JOIN event_texts t ON t.event_id = e.id ORDER BY case_id, id"
    ).fetchall():
        n, _, _, prev = heads.get(r["case_id"], (0, 0, "", ""))
        text_hash = event_store.text_digest(r["salt"], r["body"]) if r["body"] is not None else r["text_hash"]
        h = event_store.event_mac(
            key,
            r["id"],
            prev,
            r["case_id"],
            r["at"],
            r["actor"],
            r["login"],
            r["kind"],
            r["action"],
            r["from_status"],
            r["to_status"],
            r["data"],
            text_hash,
        )
        conn.execute(
            "UPDATE events SET prev_hash = ?, hash = ?, text_hash = ? WHERE id = ?", (prev, h, text_hash, r["id"])
        )
        heads[r["case_id"]] = (n + 1, r["id"], r["at"], h)
    conn.execute("DELETE FROM chain_heads WHERE purged_at IS NULL")
    for case_id, (n, last, at, h) in heads.items():
        conn.execute("DELETE FROM chain_heads WHERE case_id = ?", (case_id,))  # INSERT OR REPLACE, on both
        conn.execute(
            "INSERT INTO chain_heads VALUES (?, ?, ?, ?, ?, NULL, ?)",
            (case_id, n, last, at, h, chain.head_mac(key, case_id, n, last, at, h, None)),
        )
    last_case = conn.execute("SELECT max(case_id) FROM chain_heads").fetchone()[0]
    last_event = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    chain.write_seal(conn, key, last_case, last_event)


@pytest.fixture
def worked(cli, db):
    """Three cases with notes, a rejection and an approval."""
    for ref in ("A-1", "A-2", "A-3"):
        cli("create", "--workflow", "simple", "--ref", ref, "--subject-email", f"{ref.lower()}@example.com")
    cli("note", "C-1", "first note")
    cli("note", "C-1", "second note")
    cli("act", "C-1", "decline", "--reason", "documents forged")
    cli("act", "C-2", "approve", "--reason", "all clear")
    assert cli("db", "check").exit_code == 0
    return db


def problems(cli, *args) -> list[str]:
    result = cli.json("db", "check", "--json", *args, expect=1)
    assert result["ok"] is False
    return result["problems"]


FORGERIES = {
    "changed reason": (
        "UPDATE event_texts SET body = replace(body, 'documents forged', 'all fine') "
        "WHERE event_id = (SELECT id FROM events WHERE case_id = 1 AND action = 'decline')",
        "C-1",
    ),
    "changed actor": ("UPDATE events SET actor = 'someone-else' WHERE case_id = 2 AND action = 'approve'", "C-2"),
    "swapped notes": (
        "UPDATE event_texts SET body = CASE WHEN body LIKE '%first%' THEN replace(body, 'first', 'second') "
        "ELSE replace(body, 'second', 'first') END "
        "WHERE event_id IN (SELECT id FROM events WHERE case_id = 1 AND kind = 'note')",
        "C-1",
    ),
    "deleted case": (
        "DELETE FROM event_texts WHERE event_id IN (SELECT id FROM events WHERE case_id = 2); "
        "DELETE FROM notes WHERE case_id = 2; DELETE FROM events WHERE case_id = 2; "
        "DELETE FROM case_tags WHERE case_id = 2; DELETE FROM cases WHERE id = 2; "
        "DELETE FROM chain_heads WHERE case_id = 2",
        "C-2",
    ),
    "rejection made an approval": (
        "UPDATE events SET action = 'approve', to_status = 'approved', "
        "data = replace(data, 'declined', 'approved') WHERE case_id = 1 AND action = 'decline'; "
        "UPDATE cases SET status = 'approved', decision = 'approved' WHERE id = 1",
        "C-1",
    ),
    "newest event deleted": (
        "DELETE FROM event_texts WHERE event_id = (SELECT max(id) FROM events WHERE case_id = 1); "
        "DELETE FROM events WHERE id = (SELECT max(id) FROM events WHERE case_id = 1); "
        "UPDATE cases SET status = 'open', final = 0, decision = NULL WHERE id = 1",
        "C-1",
    ),
}


@pytest.mark.parametrize("name", FORGERIES)
@pytest.mark.parametrize("resealed", [False, True], ids=["as-is", "rehashed-without-key"])
def test_each_forgery_without_the_key_is_named(cli, worked, name, resealed):
    sql, case = FORGERIES[name]
    conn = open_raw(worked)
    with tampering(conn):
        script(conn, sql)
        if resealed:
            reseal(conn, WRONG_KEY)
    conn.close()
    found = problems(cli)
    assert any(p.startswith(case) or f" {case} " in p or f"{case}:" in p for p in found), found


@pytest.mark.parametrize("name", FORGERIES)
def test_a_rewrite_with_the_key_passes_db_check_but_not_the_anchor(cli, worked, tmp_path, name):
    anchor = tmp_path / "anchor.txt"
    cli("db", "anchor", "-o", anchor)
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    assert cli("db", "check", "--anchor", anchor).exit_code == 0
    sql, case = FORGERIES[name]
    conn = open_raw(worked)
    key = chain.key(conn, source())
    with tampering(conn):
        script(conn, sql)
        reseal(conn, key)  # an insider who holds the key too
    conn.close()
    plain = cli.json("db", "check", "--json", expect=None)
    if name != "deleted case":  # (a deleted case still shows as a gap below the seal)
        assert not any(case in p and "history" in p for p in plain["problems"]), plain  # the chain holds
    found = problems(cli, "--anchor", str(anchor))
    assert any(p.startswith(f"{case}:") for p in found), found
    assert not any(p.startswith("C-3") for p in found), found  # the untouched case is not named


def test_the_anchor_is_signed_and_an_edited_one_is_refused(cli, worked, tmp_path):
    text = cli("db", "anchor").stdout
    lines = text.splitlines()
    assert lines[0] == "casectl anchor 1" and lines[-2].startswith("digest sha256:")
    assert lines[-1].startswith("signature hmac-sha256:")
    assert sum(line.startswith("C-") for line in lines) == 3
    edited = tmp_path / "edited.txt"
    edited.write_text(text.replace("C-3 1 ", "C-3 2 "))
    found = problems(cli, "--anchor", str(edited))
    assert any("not signed with this database's key" in p for p in found)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    r = cli("db", "check", "--anchor", junk, expect=6)
    assert "not a casectl anchor" in r.stderr and "Traceback" not in r.stderr
    cli("db", "check", "--anchor", tmp_path / "missing.txt", expect=3)
    assert "is a directory" in cli("db", "check", "--anchor", tmp_path, expect=6).stderr


def test_growth_after_the_anchor_is_fine(cli, worked, tmp_path):
    anchor = tmp_path / "a.txt"
    cli("db", "anchor", "-o", anchor)
    cli("note", "C-3", "later")
    cli("create", "--workflow", "simple")
    assert cli("db", "check", "--anchor", anchor).exit_code == 0


def test_a_purged_case_keeps_its_id_and_passes(cli, db, tmp_path):
    old = {"CASECTL_NOW": "2020-01-01T00:00:00Z"}
    cli("create", "--workflow", "simple", env=old)
    cli("create", "--workflow", "simple", env=old)
    cli("act", "C-2", "approve", env=old)
    anchor = tmp_path / "a.txt"
    cli("db", "anchor", "-o", anchor)
    conn = open_raw(db)
    last_event = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    conn.close()
    cli("purge", "--closed-before", "2021-01-01")
    assert cli("create", "--workflow", "simple").stdout.strip() == "C-3"  # not C-2 again
    conn = open_raw(db)
    assert conn.execute("SELECT min(id) FROM events WHERE case_id = 3").fetchone()[0] > last_event
    conn.close()
    assert cli("db", "check").exit_code == 0
    assert cli("db", "check", "--anchor", anchor).exit_code == 0


def test_events_keep_time_order(cli, db):
    cli("create", "--workflow", "simple", env={"CASECTL_NOW": "2026-06-01T00:00:00Z"})
    before = snapshot(db)
    r = cli("act", "C-1", "approve", env={"CASECTL_NOW": "2026-05-01T00:00:00Z"}, expect=6)
    assert "earlier than the case's last event" in r.stderr
    assert snapshot(db) == before
    cli("act", "C-1", "approve", env={"CASECTL_NOW": "2026-06-01T00:00:00Z"})  # the same second is fine


def test_every_event_records_the_os_login(cli, db):
    cli("create", "--workflow", "simple", "--actor", "ann")
    [event] = cli.json("history", "C-1", "--json")["events"]
    # The login is who the database knows is there: the OS account on SQLite; on PostgreSQL the
    # role the server authenticated (session_user), which store/pg.py records.
    conn = raw_connect(db)
    login = conn.login if is_pg(conn) else pwd.getpwuid(os.geteuid()).pw_name
    conn.close()
    assert event["actor"] == "ann" and event["login"] == login
    assert f"ann (login {login})" in cli("history", "C-1", "--format", "table").stdout
    # $USER is not the login: anyone can set it.
    cli("note", "C-1", "x", "--actor", login, env={"USER": "mallory", "LOGNAME": "mallory"})
    events = cli.json("history", "C-1", "--json")["events"]
    assert events[-1]["login"] == login


def test_the_key_file_is_private_and_outside_the_database(cli, db, tmp_path):
    conn = open_raw(db)
    instance = conn.execute("SELECT value FROM settings WHERE key = 'instance_id'").fetchone()[0]
    conn.close()
    key_file = tmp_path / "xdg-config" / "casectl" / "keys" / f"{instance}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    if isinstance(db, str):  # PostgreSQL: no file to read; every value of every table instead
        assert secret not in repr(snapshot(db))
    else:
        assert secret.encode() not in db.read_bytes()


def test_without_the_key_writes_and_checks_refuse_and_reads_work(cli, db, tmp_path, monkeypatch):
    cli("create", "--workflow", "simple")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    for args in (("note", "C-1", "x"), ("db", "check")):
        r = cli(*args, expect=7)
        assert "chain key is missing" in r.stderr and "CASECTL_CHAIN_KEY" in r.stderr
    assert cli("show", "C-1").exit_code == 0 and cli("list").exit_code == 0
    monkeypatch.setenv("CASECTL_CHAIN_KEY", "not the key of this database at all")
    r = cli("note", "C-1", "x", expect=7)
    assert "is not this database's key" in r.stderr
    monkeypatch.setenv("CASECTL_CHAIN_KEY", "short")
    assert "too short" in cli("note", "C-1", "x", expect=7).stderr


def test_a_key_from_the_environment_makes_no_file(cli, db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("CASECTL_CHAIN_KEY", "k" * 40)
    cli("init")
    cli("create", "--workflow", "simple")
    assert not (tmp_path / "xdg-config" / "casectl" / "keys").exists()
    assert cli("db", "check").exit_code == 0
    monkeypatch.delenv("CASECTL_CHAIN_KEY")
    assert cli("db", "check", expect=7).exit_code == 7


def test_a_corrupted_document_is_named(cli, db, tmp_path):
    cli("create", "--workflow", "kyb")
    cli("block", "C-1", "add", "document", "passport")
    doc = tmp_path / "passport.pdf"
    doc.write_bytes(b"%PDF-1.4 a scan" * 100)
    cli("attach", "C-1", "passport", doc)
    conn = open_raw(db)
    if is_pg(conn):
        conn.execute("UPDATE documents SET content = decode(repeat('00', length(content)), 'hex')")
    else:
        conn.execute("UPDATE documents SET content = zeroblob(length(content))")
    conn.close()
    assert any(p.startswith("document ") for p in problems(cli))


@pytest.mark.sqlite_only(
    reason="builds a schema-8 SQLite file with SQLite's migrations; a PostgreSQL database starts at the schema-12 baseline"
)
def test_an_old_database_is_sealed_and_old_breaks_stay_named(cli, db_path):
    """A database from before the keyed chain (schema 8) is re-sealed on first use; where its
    plain sha256 chain was already broken, db check keeps saying so instead of sealing over it."""
    from casectl.store import migrations

    conn = sqlite3.connect(db_path, isolation_level=None)
    import sqlite_utils

    sdb = sqlite_utils.Database(conn)
    conn.execute("BEGIN")
    for _, fn in migrations.MIGRATIONS[:8]:
        fn(sdb)
    conn.execute("PRAGMA user_version = 8")
    at = "2026-01-01T00:00:00Z"
    from casectl import rules

    conn.execute(
        "INSERT INTO workflows (name, version, definition, builtin, created_at) VALUES ('simple', ?, ?, 1, ?)",
        (rules.BUILTIN["simple"].version, json.dumps(rules.workflow_to_dict(rules.BUILTIN["simple"])), at),
    )
    conn.execute(
        "INSERT INTO cases (id, workflow, workflow_version, status, final, data, registry_data, priority, "
        "created_at, updated_at) VALUES (1, 'simple', ?, 'open', 0, '{}', '{}', 'normal', ?, ?), "
        "(2, 'simple', ?, 'open', 0, '{}', '{}', 'normal', ?, ?)",
        (rules.BUILTIN["simple"].version, at, at, rules.BUILTIN["simple"].version, at, at),
    )
    prev = {1: "", 2: ""}
    for event_id, case_id, kind, reason, data in (
        (1, 1, "created", None, "{}"),
        (2, 2, "created", None, "{}"),
        (3, 1, "note", "a reason", json.dumps({"summary": "called Ada"})),
    ):
        to = "open" if kind == "created" else None
        h = migrations._v1_hash(prev[case_id], case_id, at, "ann", kind, None, None, to, reason, data)
        conn.execute(
            "INSERT INTO events (id, case_id, at, actor, kind, to_status, reason, data, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            # E-2 is written with another actor than it was hashed with: broken before the upgrade.
            (event_id, case_id, at, "mallory" if event_id == 2 else "ann", kind, to, reason, data, prev[case_id], h),
        )
        prev[case_id] = h
    conn.execute("COMMIT")
    conn.close()
    found = problems(cli)
    assert found == ["history of C-2 was already broken at E-2 before the keyed chain (schema 9) sealed it"]
    events = cli.json("history", "C-1", "--json")["events"]
    assert events[1]["reason"] == "a reason" and events[1]["data"]["summary"] == "called Ada"
    conn = open_raw(db_path)
    assert conn.execute("SELECT reason FROM events WHERE id = 3").fetchone()[0] is None  # moved beside it
    conn.close()
    cli("note", "C-1", "after the upgrade")
    assert problems(cli) == found


def test_the_check_says_how_many_cases_the_anchor_holds(cli, worked, tmp_path):
    anchor = tmp_path / "a.txt"
    cli("db", "anchor", "-o", anchor)
    cases = len(cli.json("list", "--json"))
    assert cases > 0
    assert cli.json("db", "check", "--anchor", anchor, "--json")["anchor"]["cases"] == cases
