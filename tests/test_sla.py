"""SLA: due_at at creation, the clock paused in waiting statuses, business hours, overdue filters, breach in show."""

from __future__ import annotations

from datetime import UTC, datetime

from casectl.services import sla

T0 = "2026-03-02T10:00:00Z"  # a Monday


def at(monkeypatch, when):
    monkeypatch.setenv("CASECTL_NOW", when)


def test_due_at_set_at_creation_from_the_workflow(cli, db, monkeypatch):
    at(monkeypatch, T0)
    cli("create", "--workflow", "simple")
    assert cli.json("show", "C-1", "--json")["due_at"] == "2026-03-04T10:00:00Z"  # simple: 48h


def test_clock_pauses_while_waiting_and_resumes(cli, db, monkeypatch):
    at(monkeypatch, T0)
    cli("create", "--workflow", "kyb")  # born in collection_flow (waiting): the clock has not started
    doc = cli.json("show", "C-1", "--json")
    assert doc["due_at"] is None and doc["sla"]["state"] == "paused" and doc["sla"]["remaining_seconds"] == 72 * 3600
    at(monkeypatch, "2026-03-10T10:00:00Z")
    cli("event", "C-1", "collection_completed")  # -> manual_review: 72h from now
    assert cli.json("show", "C-1", "--json")["due_at"] == "2026-03-13T10:00:00Z"


def test_simple_pending_pauses_then_resume_keeps_the_remainder(cli, db, monkeypatch):
    at(monkeypatch, T0)
    cli("create", "--workflow", "simple")
    at(monkeypatch, "2026-03-03T10:00:00Z")  # 24h used
    cli("status", "C-1", "pending")
    doc = cli.json("show", "C-1", "--json")
    assert doc["due_at"] is None and doc["sla"]["remaining_seconds"] == 24 * 3600
    assert cli("list", "--overdue", "--ids", env={"CASECTL_NOW": "2026-04-01T00:00:00Z"}).stdout == ""
    at(monkeypatch, "2026-03-20T10:00:00Z")  # waited 17 days: not counted
    cli("status", "C-1", "open")
    assert cli.json("show", "C-1", "--json")["due_at"] == "2026-03-21T10:00:00Z"


def test_overdue_due_within_and_breach_in_show(cli, db, monkeypatch):
    at(monkeypatch, T0)
    cli("create", "--workflow", "simple")
    cli("create", "--workflow", "screening")  # 120h
    at(monkeypatch, "2026-03-04T09:00:00Z")
    assert cli("list", "--due-within", "2h", "--ids").stdout.split() == ["C-1"]
    assert cli("list", "--overdue", "--ids").stdout.split() == []
    at(monkeypatch, "2026-03-05T00:00:00Z")
    assert cli("list", "--overdue", "--ids").stdout.split() == ["C-1"]
    assert "BREACHED" in cli("show", "C-1").stdout
    cli("approve", "C-1")
    doc = cli.json("show", "C-1", "--json")
    assert doc["sla"]["state"] == "breached" and doc["sla"]["breached"] is True
    assert cli("list", "--overdue", "--ids").stdout.split() == []  # closed cases are never overdue
    r = cli("list", "--due-within", "soon", expect=2)
    assert "not a duration" in r.stderr


def test_business_hours_and_holidays():
    rules = {
        "hours": 16,
        "business_hours": {"start": "09:00", "end": "17:00", "days": [1, 2, 3, 4, 5], "timezone": "Europe/London"},
        "holidays": ["2026-03-04"],
    }
    start = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # Monday 16:00 London (GMT)
    due = sla.add(rules, start, 16 * 3600)
    # Mon 1h + Tue 8h + (Wed holiday) + Thu 7h -> Thursday 16:00
    assert due == datetime(2026, 3, 5, 16, 0, tzinfo=UTC)
    assert sla.between(rules, start, due) == 16 * 3600
    friday = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
    assert sla.add(rules, friday, 3600) == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)  # over the weekend
    assert sla.add({"hours": 1}, friday, 3600) == datetime(2026, 3, 6, 17, 30, tzinfo=UTC)
