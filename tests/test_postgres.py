"""PostgreSQL itself: real identities and least-privilege roles, the append-only history by
trigger and privilege, the writer lock's timeout, the outbox claim, jsonb behind --where, and
`db copy` between the backends. (The rest of the suite runs on both backends: --backend.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from casectl.store.migrations import MIGRATIONS, PG_MIGRATIONS
from casectl.store.pg_schema import BASELINE_VERSION

from conftest import casectl_bin, pg_cluster, raw_connect

pg = pytest.mark.postgresql_only


def test_every_migration_after_the_baseline_has_its_postgresql_sql():
    later = [name for name, _ in MIGRATIONS[BASELINE_VERSION:]]
    assert [n for n in later if n not in PG_MIGRATIONS] == []
    assert set(PG_MIGRATIONS) <= set(later)


def _role_url(db_path: str, role: str) -> str:
    return db_path.replace("postgresql://postgres@", f"postgresql://{role}@", 1)


def _as(run, url, *args, **kw):
    env = {"CASECTL_DB": url, "CASECTL_ACTOR": ""}
    env.update(kw.pop("env", {}))
    return run(*args, env=env, **kw)


@pg
def test_roles_act_as_themselves_and_have_only_their_rights(cli, db, db_path, run):
    for role, kind in (("ann", "agent"), ("bea", "agent"), ("aud", "auditor"), ("lee", "lead")):
        out = cli("db", "grant", role, "--as", kind)
        assert f"{role} is" in out.stdout and kind in out.stdout
    ann, bea, aud, lee = (_role_url(db_path, r) for r in ("ann", "bea", "aud", "lee"))

    created = _as(run, ann, "create", "--workflow", "simple", "--subject-name", "Ada")
    assert created.returncode == 0, created.stderr
    case = created.stdout.strip()
    # The actor is the role: --actor naming someone else is refused, nothing written.
    other = _as(run, ann, "note", case, "as bob", "--actor", "bob")
    assert other.returncode == 4 and "acts as itself" in other.stderr
    assert _as(run, ann, "note", case, "called the client").returncode == 0
    history = json.loads(_as(run, lee, "history", case, "--json").stdout)["events"]
    assert {e["actor"] for e in history} == {"ann"}
    assert {e["login"] for e in history} == {"ann"}

    # An auditor reads and cannot write; the refusal names the grant, exit 4, nothing written.
    assert _as(run, aud, "show", case).returncode == 0
    refused = _as(run, aud, "note", case, "x")
    assert refused.returncode == 4 and "casectl db grant" in refused.stderr
    assert len(json.loads(_as(run, lee, "history", case, "--json").stdout)["events"]) == len(history)

    # An agent may not purge, redact or change workflows; a lead may.
    assert _as(run, ann, "act", case, "approve").returncode == 0
    later = {"CASECTL_ALLOW_CLOCK": "1", "CASECTL_NOW": "2031-01-01T00:00:00Z"}
    purge = _as(run, ann, "purge", "--closed-before", "2030-01-01", env=later)
    assert purge.returncode == 4, purge.stderr
    assert _as(run, ann, "workflows", "add", "/dev/null").returncode != 0
    done = _as(run, lee, "purge", "--closed-before", "2030-01-01", env=later)
    assert done.returncode == 0 and "deleted 1" in done.stdout, done.stderr
    assert _as(run, lee, "db", "check").returncode == 0


@pg
def test_four_eyes_compares_the_roles_that_connected(cli, db, db_path, run, tmp_path):
    from casectl.rules import BUILTIN, workflow_to_dict

    d = workflow_to_dict(BUILTIN["kyb"])
    d.update(name="kyb_four_eyes", version=1, four_eyes=["approve"])
    (tmp_path / "wf.json").write_text(json.dumps(d))
    cli("workflows", "add", str(tmp_path / "wf.json"))
    cli("db", "grant", "ann", "--as", "agent")
    cli("db", "grant", "bea", "--as", "agent")
    ann, bea = _role_url(db_path, "ann"), _role_url(db_path, "bea")
    made = _as(
        run, ann, "create", "-w", "kyb_four_eyes", "--subject-email", "f@example.com", "--block", "user_data:company"
    )
    case = made.stdout.strip()
    assert _as(run, ann, "event", case, "collection_completed").returncode == 0
    refused = _as(run, ann, "approve", case)
    assert refused.returncode == 4 and "four-eyes rule: ann created the case" in refused.stderr
    approved = _as(run, bea, "approve", case)
    assert approved.returncode == 0, approved.stderr
    decided = json.loads(_as(run, bea, "show", case, "--json").stdout)
    assert decided["decision"] == "approved" and decided["decided_by"] == "bea"


@pg
def test_events_are_append_only_by_trigger_even_for_the_owner(cli, db, db_path):
    cli("create", "--workflow", "simple", "--subject-name", "Ada")
    conn = raw_connect(db_path)
    try:
        with pytest.raises(Exception, match="append-only"):
            conn.execute("UPDATE events SET actor = 'mallory'")
        with pytest.raises(Exception, match="append-only"):
            conn.execute("DELETE FROM events")
    finally:
        conn.close()


@pg
def test_an_agent_role_holds_no_update_or_delete_on_events(cli, db, db_path):
    cli("db", "grant", "ann", "--as", "agent")
    conn = raw_connect(db_path)
    try:
        rights = {
            r[0]
            for r in conn.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = 'casectl_agent' AND table_name = 'events' AND table_schema = current_schema()"
            )
        }
    finally:
        conn.close()
    assert rights == {"SELECT", "INSERT"}


@pg
def test_a_writer_held_past_the_busy_timeout_is_exit_5_with_sqlites_message(cli, db, db_path, run):
    from casectl.store.pg import WRITER_LOCK

    case = cli("create", "--workflow", "simple", "--subject-name", "Ada").stdout.strip()
    holder = raw_connect(db_path)
    try:
        holder.execute("SELECT pg_advisory_lock(?)", (WRITER_LOCK,))
        out = run("note", case, "waits", env={"CASECTL_BUSY_TIMEOUT": "0.5"})
        assert out.returncode == 5
        assert "stayed locked by another writer for 0.5s; try again" in out.stderr
        assert run("show", case).returncode == 0  # readers are never blocked
    finally:
        holder.execute("SELECT pg_advisory_unlock(?)", (WRITER_LOCK,))
        holder.close()
    assert run("note", case, "now it goes").returncode == 0


@pg
def test_where_on_a_data_path_is_served_by_the_gin_index(cli, db, db_path):
    for i in range(30):
        cli(
            "create",
            "--workflow",
            "simple",
            "--subject-name",
            f"Co {i}",
            "--data",
            json.dumps({"company": {"reg_no": f"R{i}"}}),
        )
    assert [c["id"] for c in cli.json("list", "--where", "data.company.reg_no=R7", "--json")] == ["C-8"]
    conn = raw_connect(db_path)
    try:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM cases c WHERE CAST(json_extract(c.data, ?) AS TEXT) = ?",
                ('$."company"."reg_no"', "R7"),
            )
        )
    finally:
        conn.close()
    assert "idx_cases_data" in plan


@pg
def test_two_deliverers_never_send_a_message_twice(cli, db, run):
    from outside_servers import Receiver

    with Receiver(delay=0.05) as rx:
        cli("hooks", "add", rx.url, "--event", "case.created")
        for i in range(12):
            cli("create", "--workflow", "simple", "--subject-name", f"S{i}")
        env = {**os.environ, "CASECTL_NO_DELIVER": "0"}
        procs = [
            subprocess.Popen(
                [casectl_bin(), "outbox", "deliver"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        for p in procs:
            p.wait(timeout=120)
            assert p.returncode == 0, p.stderr.read()
        keys = [r.headers.get("webhook-id") for r in rx.requests]
    assert len(keys) == 12 and len(set(keys)) == 12


@pg
def test_db_copy_into_postgresql_and_back_keeps_everything(cli, run, tmp_path, monkeypatch):
    source = tmp_path / "team.db"
    monkeypatch.setenv("CASECTL_DB", str(source))
    cli("init")
    for i in range(3):
        cli("create", "--workflow", "kyb", "--subject-name", f"Müller {i}", "--data", json.dumps({"n": i}))
    cli("tag", "C-1", "urgent")
    cli("note", "C-2", "called the client")
    (tmp_path / "passport.pdf").write_bytes(b"%PDF-1.4 " + bytes(range(256)) * 4000)
    cluster = pg_cluster()
    schema = cluster.new_schema()
    target = cluster.url(schema=schema)
    back = tmp_path / "back.db"
    try:
        out = cli("db", "copy", str(source), target)
        assert "copied 3 cases" in out.stdout and "db check on the target: ok" in out.stdout
        again = cli("db", "copy", str(source), target, expect=5)
        assert "already holds cases" in again.stderr
        assert cli.json("list", "--where", "data.n=2", "--json", "--db", target)[0]["id"] == "C-3"
        assert [c["id"] for c in cli.json("search", "muller", "--json", "--db", target)] == ["C-1", "C-2", "C-3"]
        cli("db", "check", "--db", target)
        cli("db", "copy", target, str(back))
        assert (
            cli("export", "--format", "json", "--db", str(back)).stdout
            == cli("export", "--format", "json", "--db", str(source)).stdout
        )
        assert cli("history", "C-2", "--db", str(back)).stdout == cli("history", "C-2", "--db", str(source)).stdout
    finally:
        cluster.drop_schema(schema)


@pytest.mark.sqlite_only(reason="that the SQLite path never loads psycopg")
def test_the_sqlite_path_imports_nothing_of_postgresql(cli, db, db_path):
    cli("create", "--workflow", "simple", "--subject-name", "Ada")
    code = (
        "import sys\n"
        "from casectl.cli.app import main\n"
        f"sys.argv = ['casectl', '--db', {str(db_path)!r}, 'list']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('psycopg', 'casectl.store.pg'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "sqlite,postgresql",
    [
        ("SELECT * FROM t WHERE a = ? AND b LIKE '50%?'", "SELECT * FROM t WHERE a = %s AND b ILIKE '50%%?'"),
        ("INSERT OR IGNORE INTO case_tags (case_id, tag) VALUES (?, ?)",
         "INSERT INTO case_tags (case_id, tag) VALUES (%s, %s) ON CONFLICT DO NOTHING"),
        ("SELECT 1 WHERE o2.case_id IS o.case_id AND x IS NOT y AND z IS NOT NULL",
         "SELECT 1 WHERE o2.case_id IS NOT DISTINCT FROM o.case_id AND x IS DISTINCT FROM y AND z IS NOT NULL"),
        ("SELECT max(a, b), max(id) FROM t", "SELECT greatest(a, b), max(id) FROM t"),
        ("SELECT * FROM cases c ORDER BY c.due_at, c.id DESC LIMIT 5",
         "SELECT * FROM cases c ORDER BY c.due_at NULLS FIRST, c.id DESC LIMIT 5"),
        ("SELECT * FROM outbox WHERE next_attempt_at <= :now", "SELECT * FROM outbox WHERE next_attempt_at <= %(now)s"),
        ("SELECT 1 FROM cases c WHERE c.final = 0 AND +c.due_at < ?", "SELECT 1 FROM cases c WHERE c.final = 0 AND c.due_at < %s"),
        ("SELECT 'it''s ? %' AS t", "SELECT 'it''s ? %%' AS t"),
    ],
)  # fmt: skip
def test_sqlite_spellings_are_translated_and_quoted_text_is_left_alone(sqlite, postgresql):
    pytest.importorskip("psycopg")
    from casectl.store.pg import translate

    assert translate(sqlite) == postgresql


@pg
def test_an_unreachable_server_a_missing_database_and_a_refused_role_are_one_line(cli, db, db_path, run):
    cluster = pg_cluster()
    cases = [
        (f"postgresql://postgres@127.0.0.1:{_closed_port()}/casectl", 7, "cannot connect to the PostgreSQL database"),
        (cluster.url("no_such_database"), 3, "no PostgreSQL database at"),
        (cluster.url(user="no_such_role"), 4, "the PostgreSQL server refused"),
        ("postgresql:///?service=no_such_service", 7, 'definition of service "no_such_service" not found'),
    ]
    for url, code, message in cases:
        out = run("list", env={"CASECTL_DB": url})
        assert out.returncode == code, (url, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "Traceback" not in out.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


@pg
def test_a_connection_lost_mid_command_is_exit_7_and_writes_nothing(cli, db, db_path):
    import time

    from casectl.store.pg import WRITER_LOCK

    case = cli("create", "--workflow", "simple", "--subject-name", "Ada").stdout.strip()
    holder = raw_connect(db_path)
    try:
        holder.execute("SELECT pg_advisory_lock(?)", (WRITER_LOCK,))
        env = {**os.environ, "CASECTL_BUSY_TIMEOUT": "30"}
        proc = subprocess.Popen(
            [casectl_bin(), "note", case, "never written"], env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(200):  # until it waits on the writer lock
            waiting = holder.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'casectl' AND wait_event_type = 'Lock'"
            ).fetchall()
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the note never waited for the lock"
        holder.execute("SELECT pg_terminate_backend(?)", (waiting[0][0],))
        _, err = proc.communicate(timeout=60)
    finally:
        holder.execute("SELECT pg_advisory_unlock(?)", (WRITER_LOCK,))
        holder.close()
    assert proc.returncode == 7, err
    assert "lost the connection" in err and "Traceback" not in err
    assert "never written" not in cli("show", case).stdout
