"""The core case commands through the real CLI against a real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import raw_connect


def create(cli, *args):
    return cli("create", *args).stdout.strip()


def test_create_prints_the_id_alone(cli, db):
    out = cli("create", "--workflow", "kyb", "--subject-email", "ada@example.com").stdout
    assert out == "C-1\n"


def test_create_json_and_show_json(cli, db):
    doc = cli.json(
        "create",
        "--workflow",
        "kyb",
        "--ref",
        "ACME-1",
        "--subject-name",
        "Ada Lovelace",
        "--subject-email",
        "ada@example.com",
        "--subject-dob",
        "1815-12-10",
        "--country",
        "gb",
        "--data",
        '{"company": {"reg_no": "123"}}',
        "--tag",
        "vip",
        "--tag",
        "hk",
        "--assignee",
        "ann",
        "--priority",
        "high",
        "--json",
    )
    assert doc["id"] == "C-1" and doc["ref"] == "ACME-1" and doc["status"] == "collection_flow"
    assert doc["subject"] == {
        "id": "S-1",
        "ref": None,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "dob": "1815-12-10",
        "country": "GB",
        "entity_type": "person",
    }
    assert doc["tags"] == ["hk", "vip"] and doc["priority"] == "high" and doc["version"] == 1
    shown = cli.json("show", "ACME-1", "--json")
    assert shown["id"] == "C-1" and shown["data"] == {"company": {"reg_no": "123"}}
    assert shown["allowed_actions"] == []
    assert [e["kind"] for e in shown["history"]] == ["created"]
    assert shown["history"][0]["actor"] == "tester"


def test_subject_is_reused_by_email(cli, db):
    create(cli, "--workflow", "kyb", "--subject-email", "Ada@Example.com", "--subject-name", "Ada")
    create(cli, "--workflow", "simple", "--subject-email", "ada@example.com")
    subject = cli.json("subjects", "show", "S-1", "--json")
    assert [c["id"] for c in subject["cases"]] == ["C-1", "C-2"]
    assert len(cli.json("subjects", "list", "--json")) == 1


def test_data_from_file_and_stdin(cli, db, tmp_path):
    f = tmp_path / "d.json"
    f.write_text('{"a": 1}')
    create(cli, "--workflow", "simple", "--data", f"@{f}")
    cli("create", "--workflow", "simple", "--data", "-", input='{"b": 2}')
    assert cli.json("show", "C-1", "--json")["data"] == {"a": 1}
    assert cli.json("show", "C-2", "--json")["data"] == {"b": 2}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--subject-email", "not-an-email"], "subject_email"),
        (["--subject-dob", "1990-02-30"], "subject_dob"),
        (["--country", "XX"], "country"),
        (["--priority", "asap"], "priority"),
        (["--data", "{nope"], "--data: not valid JSON"),
        (["--data", "[1, 2]"], "must be a JSON object"),
        (["--status", "flying"], "status"),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(cli, db, args, message):
    result = cli("create", "--workflow", "kyb", *args, expect=6)
    assert message in result.stderr and result.stderr.startswith("casectl: error:")
    assert result.stdout == ""
    assert cli.json("list", "--json") == []


def test_duplicate_ref_is_a_conflict(cli, db):
    create(cli, "--workflow", "kyb", "--ref", "R1")
    result = cli("create", "--workflow", "kyb", "--ref", "R1", expect=5)
    assert "R1" in result.stderr
    assert len(cli.json("list", "--json")) == 1


def test_unknown_workflow_is_not_found(cli, db):
    assert "unknown workflow 'nope'" in cli("create", "--workflow", "nope", expect=3).stderr


def test_kyb_journey_with_events_and_exit_codes(cli, db):
    cid = create(cli, "--workflow", "kyb")
    r = cli("approve", cid, expect=4)
    assert "collection_flow" in r.stderr and "allowed now: none" in r.stderr
    out = cli("event", cid, "collection_completed").stdout
    assert "collection_flow -> manual_review" in out
    r = cli("event", cid, "collection_completed", expect=4)
    assert "manual_review" in r.stderr
    r = cli("act", cid, "request_reuploads", expect=4)
    assert "reupload_needed" in r.stderr and "allowed now: approve, reject" in r.stderr
    cli("approve", cid, "--expect-status", "manual_review")
    doc = cli.json("show", cid, "--json")
    assert doc["status"] == "approved" and doc["decision"] == "approved" and doc["final"] is True
    hist = cli.json("history", cid, "--json")["events"]
    assert [(e["kind"], e["action"], e["from"], e["to"]) for e in hist] == [
        ("created", None, None, "collection_flow"),
        ("system", "collection_completed", "collection_flow", "manual_review"),
        ("action", "approve", "manual_review", "approved"),
    ]
    assert all(e["actor"] == "tester" for e in hist)


def test_reject_needs_a_reason(cli, db):
    cid = create(cli, "--workflow", "kyb")
    cli("event", cid, "collection_completed")
    # One concept, one code: a missing reason is invalid input (6) on every path.
    assert "needs a reason" in cli("reject", cid, expect=6).stderr
    r = cli("act", cid, "reject", expect=6)
    assert "needs a reason" in r.stderr
    cli("reject", cid, "--reason", "sanctions hit")
    doc = cli.json("show", cid, "--json")
    assert doc["status"] == "rejected" and doc["decision_reason"] == "sanctions hit"


def test_expect_status_and_version_conflicts(cli, db):
    cid = create(cli, "--workflow", "simple")
    r = cli("approve", cid, "--expect-status", "pending", expect=5)
    assert "is open, not pending" in r.stderr
    r = cli("approve", cid, "--expect-version", "7", expect=5)
    assert "version 1, not 7" in r.stderr
    assert cli.json("show", cid, "--json")["status"] == "open"
    cli("approve", cid, "--expect-version", "1")


def test_dry_run_writes_nothing(cli, db, db_path):
    cid = create(cli, "--workflow", "simple")
    out = cli.json("approve", cid, "--dry-run", "--json")
    assert out["dry_run"] is True and out["to"] == "approved" and out["event"] is None
    assert cli.json("show", cid, "--json")["status"] == "open"
    assert len(cli.json("history", cid, "--json")["events"]) == 1
    r = cli("act", cid, "request_reuploads", "--dry-run", expect=4)
    assert "no action 'request_reuploads'" in r.stderr


def test_status_where_the_workflow_allows_it(cli, db):
    cid = create(cli, "--workflow", "simple")
    cli("status", cid, "pending", "--reason", "waiting for statement")
    assert cli.json("show", cid, "--json")["status"] == "pending"
    cli("status", cid, "declined", "--reason", "no statement came")
    assert cli.json("show", cid, "--json")["decision_reason"] == "no statement came"
    r = cli("status", cid, "open", expect=4)
    assert "declined" in r.stderr
    kyb = create(cli, "--workflow", "kyb")
    r = cli("status", kyb, "approved", expect=4)
    assert "does not allow setting the status directly" in r.stderr
    r = cli("status", cid, "nope", expect=4)
    assert "no status 'nope'" in r.stderr


def test_not_found(cli, db):
    for args in (["show", "C-99"], ["approve", "C-99"], ["history", "nope"], ["subjects", "show", "S-9"]):
        r = cli(*args, expect=3)
        assert "casectl: error:" in r.stderr


@pytest.mark.sqlite_only(reason="the subject is a SQLite file that does not exist, and must not be made")
def test_missing_database_is_not_found(cli, tmp_path):
    missing = tmp_path / "nope.db"
    r = cli("list", "--db", str(missing), expect=3)
    assert "no database" in r.stderr and "casectl init" in r.stderr
    assert not missing.exists()


@pytest.mark.sqlite_only(reason="the mode of the SQLite database file")
def test_database_file_is_private(cli, db):
    assert db.stat().st_mode & 0o777 == 0o600


def test_usage_errors_exit_2(cli, db):
    assert cli("list", "--sort", "shoe", expect=2).stderr.count("unknown sort field") == 1
    assert "unknown field: shoe" in cli("list", "--fields", "id,shoe", expect=2).stderr
    assert "unknown format" in cli("list", "--format", "xml", expect=2).stderr
    assert cli("frobnicate", expect=2).exit_code == 2
    assert "KEY=VALUE" in cli("list", "--where", "novalue", expect=2).stderr


@pytest.fixture
def populated(cli, db):
    cli(
        "create",
        "--workflow",
        "kyb",
        "--ref",
        "K1",
        "--subject-name",
        "Hong Kong Ltd",
        "--country",
        "HK",
        "--entity-type",
        "company",
        "--data",
        '{"company": {"reg_no": "HK1"}}',
        "--tag",
        "vip",
        "--assignee",
        "ann",
    )
    cli(
        "create",
        "--workflow",
        "kyb",
        "--ref",
        "K2",
        "--subject-name",
        "China Co",
        "--country",
        "CN",
        "--data",
        '{"company": {"reg_no": "CN2"}, "score": 7}',
    )
    cli(
        "create",
        "--workflow",
        "simple",
        "--ref",
        "S1",
        "--subject-name",
        "Bob",
        "--subject-dob",
        "1990-01-01",
        "--assignee",
        "bob",
        "--tag",
        "vip",
    )
    cli("event", "K1", "collection_completed")
    return db


@pytest.mark.parametrize(
    "args,expected",
    [
        ([], ["C-1", "C-2", "C-3"]),
        (["--status", "manual_review"], ["C-1"]),
        (["--status", "manual_review", "--status", "open"], ["C-1", "C-3"]),
        (["--workflow", "kyb"], ["C-1", "C-2"]),
        (["--assignee", "bob"], ["C-3"]),
        (["--tag", "vip"], ["C-1", "C-3"]),
        (["--country", "hk"], ["C-1"]),
        (["--where", "company.reg_no=CN2"], ["C-2"]),
        (["--where", "score=7"], ["C-2"]),
        (["--where", "subject.name=Bob"], ["C-3"]),
        (["--where", "subject.dob=1990-01-01"], ["C-3"]),
        (["--unassigned"], ["C-2"]),
        (["--open", "--workflow", "simple"], ["C-3"]),
        (["--sort", "-id"], ["C-3", "C-2", "C-1"]),
        (["--sort", "-id", "--limit", "2"], ["C-3", "C-2"]),
        (["--created-since", "2000-01-01", "--created-until", "2000-01-02"], []),
        (["--mine", "--actor", "ann"], ["C-1"]),
    ],
)
def test_list_filters(cli, populated, args, expected):
    assert [c["id"] for c in cli.json("list", *args, "--json")] == expected


def test_list_formats(cli, populated):
    nd = [json.loads(line) for line in cli("list", "--format", "ndjson").stdout.splitlines()]
    assert [c["ref"] for c in nd] == ["K1", "K2", "S1"]
    rows = list(csv.DictReader(io.StringIO(cli("list", "--format", "csv", "--fields", "id,ref,status").stdout)))
    assert rows == [
        {"id": "C-1", "ref": "K1", "status": "manual_review"},
        {"id": "C-2", "ref": "K2", "status": "collection_flow"},
        {"id": "C-3", "ref": "S1", "status": "open"},
    ]
    plain = cli("list", "--fields", "id,status").stdout
    assert plain == "C-1\tmanual_review\nC-2\tcollection_flow\nC-3\topen\n"
    assert cli("list", "--ids").stdout == "C-1\nC-2\nC-3\n"
    assert cli("list", "--status", "approved").stdout == ""  # no results: exit 0, nothing on stdout


def test_every_write_is_in_history(cli, populated, db):
    conn = raw_connect(db)
    try:
        events = [tuple(r) for r in conn.execute("SELECT case_id, kind FROM events ORDER BY id")]
    finally:
        conn.close()
    assert events == [(1, "created"), (2, "created"), (3, "created"), (1, "system")]


def test_actor_from_option_after_the_command(cli, db):
    cid = create(cli, "--workflow", "simple", "--actor", "carol")
    cli("--actor", "dave", "approve", cid)
    hist = cli.json("history", cid, "--json")["events"]
    assert [e["actor"] for e in hist] == ["carol", "dave"]
