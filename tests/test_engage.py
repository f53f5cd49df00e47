"""Reaching the subject (seed 004): contact, appointments; emails wait for an SMTP server."""

from __future__ import annotations

import json

import pytest

from conftest import outbox, snapshot
from outside_servers import SmtpServer, parts


@pytest.fixture
def case(cli, db, monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", "2030-01-01T09:00:00Z")
    return cli(
        "create", "--workflow", "simple", "--ref", "Q-1", "--subject-name", "Ada", "--subject-email", "ada@example.com"
    ).stdout.strip()


def test_contact_queues_an_email_and_records_it(cli, case, db):
    out = cli.json("contact", case, "-m", "Please send a certified copy of your passport.", "--json")
    assert out["to"] == "ada@example.com" and out["subject"] == "About your case Q-1"
    [row] = outbox(db)
    payload = json.loads(row["payload"])
    assert row["kind"] == "email" and row["target"] == "ada@example.com" and row["status"] == "pending"
    assert payload["template"] == "contact" and "certified copy" in payload["text"]
    last = cli.json("history", case, "--json")["events"][-1]
    assert last["kind"] == "contact" and "certified copy" not in json.dumps(last)  # the text stays in the message


def test_contact_from_stdin_and_bad_input(cli, case, db):
    cli("contact", case, "-m", "-", input="from stdin\n")
    assert json.loads(outbox(db)[0]["payload"])["text"] == "from stdin"
    nobody = cli("create", "--workflow", "simple").stdout.strip()
    before = snapshot(db)
    assert "no subject email" in cli("contact", nobody, "-m", "hi", expect=6).stderr
    assert "empty" in cli("contact", case, "-m", "   ", expect=6).stderr
    assert cli("contact", "C-99", "-m", "hi", expect=3).exit_code == 3
    assert snapshot(db) == before


def test_appointments(cli, case, db):
    a = cli.json(
        "appointment",
        case,
        "add",
        "2030-01-03T10:00",
        "Identity check call",
        "--with",
        "Mei",
        "--minutes",
        "45",
        "--notify",
        "--json",
    )
    assert a == {
        "id": "M-1",
        "case": case,
        "starts_at": "2030-01-03T10:00:00Z",
        "minutes": 45,
        "title": "Identity check call",
        "with": "Mei",
        "created_by": "tester",
        "cancelled_at": None,
        "subject_name": "Ada",
    }
    cli("appointment", case, "add", "2030-02-01", "Follow-up")
    assert [r["id"] for r in cli.json("appointments", "--upcoming", "7d", "--json")] == ["M-1"]
    assert [r["id"] for r in cli.json("appointments", case, "--json")] == ["M-1", "M-2"]
    assert json.loads(outbox(db)[0]["payload"])["template"] == "appointment"
    assert cli.json("show", case, "--json")["appointments"][0]["title"] == "Identity check call"
    cli("appointment", case, "cancel", "M-2", "--reason", "not needed")
    assert [r["id"] for r in cli.json("appointments", "--json")] == ["M-1"]
    assert "already cancelled" in cli("appointment", case, "cancel", "M-2", expect=4).stderr
    kinds = [e["kind"] for e in cli.json("history", case, "--json")["events"]]
    assert kinds == ["created", "appointment.add", "appointment.add", "appointment.cancel"]


def test_appointment_refusals_write_nothing(cli, case, db):
    before = snapshot(db)
    assert "not a date" in cli("appointment", case, "add", "soon", "Call", expect=2).stderr
    assert "usage" in cli("appointment", case, "add", "2030-01-02", expect=2).stderr
    assert "unknown verb" in cli("appointment", case, "move", "M-1", expect=2).stderr
    assert cli("appointment", case, "cancel", "M-9", expect=3).exit_code == 3
    assert "positive" in cli("appointment", case, "add", "2030-01-02", "Call", "--minutes", "0", expect=6).stderr
    cli("approve", case)
    after_approve = snapshot(db)
    assert "final" in cli("appointment", case, "add", "2030-01-02", "Call", expect=4).stderr
    assert snapshot(db) == after_approve and before != after_approve


def test_emails_wait_for_an_smtp_server_then_go(cli, case, db, monkeypatch, tmp_path):
    monkeypatch.delenv("CASECTL_NO_DELIVER")
    empty = tmp_path / "empty.toml"  # a config file without [smtp] (a missing one is an error)
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("CASECTL_CONFIG", str(empty))
    r = cli("contact", case, "-m", "hello")
    assert r.stderr == ""  # no SMTP configured: nothing tried, nothing to nag about
    assert outbox(db)[0]["attempts"] == 0 and outbox(db)[0]["status"] == "pending"
    with SmtpServer() as smtp:
        for k, v in smtp.env().items():
            monkeypatch.setenv(k, v)
        cli("outbox", "deliver")  # read commands deliver nothing; the deliverer sends what is due
        [(rcpts, msg)] = smtp.messages
    assert rcpts == ["ada@example.com"] and "hello" in parts(msg)["text/plain"]
    assert outbox(db)[0]["status"] == "delivered"
