"""Routines: time-based rules in the workflow, fired by `casectl routines run` (from cron),
once per case per entry into their status, each step through the rules like an agent's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import casectl_bin, outbox, raw_connect, snapshot

MONDAY = "2026-03-02T09:00:00Z"


def at(text: str) -> dict[str, str]:
    return {"CASECTL_NOW": text}


def support_workflow(**changes) -> dict:
    wf = {
        "name": "support",
        "title": "Support with reminders",
        "initial": "new",
        "statuses": [
            {"name": "new"},
            {"name": "waiting_customer", "waiting": True},
            {"name": "escalated"},
            {"name": "closed", "final": True},
        ],
        "actions": [
            {"name": "ask", "from": ["new"], "to": "waiting_customer"},
            {"name": "reply", "from": ["waiting_customer", "escalated"], "to": "new"},
            {"name": "escalate", "from": ["waiting_customer"], "to": "escalated", "trigger": "system"},
            {"name": "close", "from": ["new", "waiting_customer", "escalated"], "to": "closed"},
        ],
        "routines": [
            {
                "name": "remind_subject",
                "in_status": "waiting_customer",
                "after": "3d",
                "do": [
                    {"email": {"to": ["{subject.email}"], "subject": "{case.id}: we still need your answer"}},
                    {"tag": "+stale"},
                    {"note": "reminded the customer"},
                ],
            },
            {
                "name": "escalate_stale",
                "in_status": "waiting_customer",
                "after": "7d",
                "do": [
                    {"event": "escalate"},
                    {"assign": {"team": "escalations"}},
                    {"priority": "high"},
                    {"activity": {"type": "call_customer", "label": "Call the customer"}},
                ],
            },
        ],
    }
    wf.update(changes)
    return wf


@pytest.fixture
def add_workflow(cli, db, tmp_path):
    def add(wf: dict) -> None:
        path = tmp_path / f"{wf['name']}.json"
        path.write_text(json.dumps(wf))
        cli("workflows", "add", path)

    return add


@pytest.fixture
def waiting(cli, add_workflow):
    """A support case waiting on its customer since Monday 09:00."""
    add_workflow(support_workflow())
    case = cli(
        "create", "--workflow", "support", "--subject-email", "ada@example.com", "--subject-name", "Ada", env=at(MONDAY)
    ).stdout.strip()
    cli("act", case, "ask", env=at(MONDAY))
    return case


def run_routines(cli, when: str, *extra: str) -> dict:
    return cli.json("routines", "run", "--json", *extra, env=at(when))


def events_of(cli, case: str, kind: str | None = None) -> list[dict]:
    events = cli.json("history", case, "--json")["events"]
    return [e for e in events if kind is None or e["kind"] == kind]


def test_a_stale_case_is_reminded_then_escalated_once_each(cli, db, waiting):
    assert run_routines(cli, "2026-03-04T09:00:00Z")["results"] == []  # two days: nothing yet

    first = run_routines(cli, "2026-03-05T09:00:01Z")  # three days and a second
    assert [(r["case"], r["routine"], r["outcome"]) for r in first["results"]] == [(waiting, "remind_subject", "fired")]
    case = cli.json("show", waiting, "--json")
    assert case["tags"] == ["stale"] and case["status"] == "waiting_customer"
    mails = [m for m in outbox(db) if m["kind"] == "email"]
    assert [m["target"] for m in mails] == ["ada@example.com"]
    assert json.loads(mails[0]["payload"])["subject"] == f"{waiting}: we still need your answer"
    routine_events = events_of(cli, waiting, "routine")
    assert [e["data"]["routine"] for e in routine_events] == ["remind_subject"]
    assert routine_events[0]["actor"] == "routine:remind_subject"
    assert any(e["kind"] == "note" for e in events_of(cli, waiting))

    # Run again, and again later: the reminder does not repeat for this stay in the status.
    assert run_routines(cli, "2026-03-05T10:00:00Z")["results"] == []
    assert run_routines(cli, "2026-03-08T09:00:00Z")["results"] == []

    escalation = run_routines(cli, "2026-03-09T09:30:00Z")  # a week
    assert [(r["routine"], r["outcome"]) for r in escalation["results"]] == [("escalate_stale", "fired")]
    case = cli.json("show", waiting, "--json")
    assert (case["status"], case["team"], case["priority"]) == ("escalated", "escalations", "high")
    assert [a["type"] for a in case["activities"]] == ["call_customer"]
    escalated = [e for e in events_of(cli, waiting) if e.get("action") == "escalate"]
    assert len(escalated) == 1 and escalated[0]["actor"] == "routine:escalate_stale"
    assert run_routines(cli, "2026-03-20T09:00:00Z")["results"] == []  # no longer waiting: nothing
    assert len(events_of(cli, waiting, "routine")) == 2
    assert cli("db", "check").exit_code == 0


def test_entering_the_status_again_starts_the_wait_again(cli, db, waiting):
    run_routines(cli, "2026-03-05T10:00:00Z")
    cli("act", waiting, "reply", env=at("2026-03-06T09:00:00Z"))
    cli("act", waiting, "ask", env=at("2026-03-06T10:00:00Z"))
    assert run_routines(cli, "2026-03-09T09:00:00Z")["results"] == []  # 2 days 23 hours into the new stay
    again = run_routines(cli, "2026-03-09T10:00:01Z")
    assert [(r["routine"], r["outcome"]) for r in again["results"]] == [("remind_subject", "fired")]
    assert len(events_of(cli, waiting, "routine")) == 2


def test_show_says_when_each_routine_is_due_and_how_it_went(cli, db, waiting):
    parts = cli.json("show", waiting, "--json", env=at("2026-03-04T09:00:00Z"))["routines"]
    assert [(p["routine"], p["state"], p["due_at"]) for p in parts] == [
        ("remind_subject", "waiting", "2026-03-05T09:00:00Z"),
        ("escalate_stale", "waiting", "2026-03-09T09:00:00Z"),
    ]
    run_routines(cli, "2026-03-05T12:00:00Z")
    text = cli("show", waiting, env=at("2026-03-05T12:00:00Z")).stdout
    assert "remind_subject (after 3d): fired; was due 2026-03-05T09:00:00Z" in text
    assert "escalate_stale (after 7d): due 2026-03-09T09:00:00Z" in text


def test_a_dry_run_says_what_would_fire_and_writes_nothing(cli, db, waiting):
    before = snapshot(db)
    r = cli("routines", "run", "--dry-run", env=at("2026-03-10T09:00:00Z"))
    assert f"{waiting} remind_subject: would fire" in r.stdout
    assert f"{waiting} escalate_stale: would fire" in r.stdout
    assert "would fire 2, would fail 0 (dry run: nothing written)" in r.stdout
    assert snapshot(db) == before


def test_a_refused_step_undoes_the_routine_is_reported_and_retried(cli, db, add_workflow):
    wf = support_workflow()
    escalate = next(a for a in wf["actions"] if a["name"] == "escalate")
    escalate["guards"] = ["contains(tags, 'may_escalate')"]
    wf["routines"] = [
        {
            "name": "escalate_stale",
            "in_status": "waiting_customer",
            "after": "1d",
            "do": [{"tag": "+stale"}, {"email": {"to": ["lead@example.com"]}}, {"event": "escalate"}],
        }
    ]
    add_workflow(wf)
    case = cli("create", "--workflow", "support", env=at(MONDAY)).stdout.strip()
    cli("act", case, "ask", env=at(MONDAY))
    before = [len(outbox(db)), cli.json("show", case, "--json")["tags"]]

    r = cli("routines", "run", env=at("2026-03-03T10:00:00Z"))
    assert r.exit_code == 0
    assert f"{case} escalate_stale: failed (attempt 1): step 3 (event escalate): cannot escalate" in r.stderr
    assert "condition not met: contains(tags, 'may_escalate')" in r.stderr
    assert "tried again next run" in r.stderr and "fired 0, failed 1" in r.stdout
    assert [len(outbox(db)), cli.json("show", case, "--json")["tags"]] == before  # the tag and email undone
    assert events_of(cli, case, "routine") == []

    second = run_routines(cli, "2026-03-03T11:00:00Z")
    assert [(x["outcome"], x["attempts"]) for x in second["results"]] == [("failed", 2)]

    cli("tag", case, "+may_escalate", env=at("2026-03-03T12:00:00Z"))
    third = run_routines(cli, "2026-03-03T13:00:00Z")
    assert [(x["outcome"], x["attempts"]) for x in third["results"]] == [("fired", 3)]
    assert cli.json("show", case, "--json")["status"] == "escalated"


def test_a_condition_keeps_the_routine_waiting_until_it_holds(cli, db, add_workflow):
    wf = support_workflow()
    wf["routines"] = [
        {
            "name": "chase_vip",
            "in_status": "waiting_customer",
            "after": "1h",
            "when": "data.vip == `true`",
            "do": [{"priority": "urgent"}],
        }
    ]
    add_workflow(wf)
    plain = cli("create", "--workflow", "support", env=at(MONDAY)).stdout.strip()
    vip = cli("create", "--workflow", "support", "--data", '{"vip": true}', env=at(MONDAY)).stdout.strip()
    for case in (plain, vip):
        cli("act", case, "ask", env=at(MONDAY))
    fired = run_routines(cli, "2026-03-02T12:00:00Z")["results"]
    assert [(r["case"], r["outcome"]) for r in fired] == [(vip, "fired")]
    assert cli.json("show", plain, "--json")["priority"] == "normal"
    assert cli.json("show", vip, "--json")["priority"] == "urgent"


def test_business_time_counts_working_days(cli, db, add_workflow):
    wf = support_workflow(
        sla={"hours": 80, "business_hours": {"start": "09:00", "end": "17:00", "days": [1, 2, 3, 4, 5]}}
    )
    wf["routines"] = [
        {
            "name": "nudge",
            "in_status": "waiting_customer",
            "after": "2d",
            "time": "business",
            "do": [{"tag": "+nudged"}],
        }
    ]
    add_workflow(wf)
    friday = "2026-03-06T16:00:00Z"
    case = cli("create", "--workflow", "support", env=at(friday)).stdout.strip()
    cli("act", case, "ask", env=at(friday))
    # Two working days of 8 hours from Friday 16:00: Friday's last hour, Monday, and Tuesday until 16:00.
    assert run_routines(cli, "2026-03-09T10:00:00Z")["results"] == []  # calendar 2d has passed
    assert run_routines(cli, "2026-03-10T15:59:00Z")["results"] == []
    assert [r["outcome"] for r in run_routines(cli, "2026-03-10T16:00:00Z")["results"]] == ["fired"]


def test_two_concurrent_runs_fire_each_routine_once(cli, db, add_workflow, tmp_path):
    wf = support_workflow()
    wf["routines"] = [wf["routines"][0]]
    add_workflow(wf)
    cases = [cli("create", "--workflow", "support", env=at(MONDAY)).stdout.strip() for _ in range(12)]
    cli("act", "-", "ask", input="\n".join(cases) + "\n", env=at(MONDAY))
    env = {**os.environ, "CASECTL_NOW": "2026-03-06T09:00:00Z", "CASECTL_BUSY_TIMEOUT": "30"}
    procs = [
        subprocess.Popen([casectl_bin(), "routines", "run", "--json"], stdout=subprocess.PIPE, env=env)
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(r["fired"] for r in results) == 12 and sum(r["failed"] for r in results) == 0
    conn = raw_connect(db)
    try:
        per_case = dict(
            conn.execute("SELECT case_id, count(*) FROM events WHERE kind = 'routine' GROUP BY case_id").fetchall()
        )
        assert sorted(per_case.values()) == [1] * 12
        assert conn.execute("SELECT count(*) FROM outbox WHERE kind = 'email'").fetchone()[0] == 12
    finally:
        conn.close()


def test_list_finds_cases_by_time_in_their_status(cli, db, waiting):
    recent = cli("create", "--workflow", "support", env=at(MONDAY)).stdout.strip()
    cli("act", recent, "ask", env=at("2026-03-08T09:00:00Z"))
    ids = lambda *a: cli("list", "--ids", *a, env=at("2026-03-10T09:00:00Z")).stdout.split()  # noqa: E731
    assert ids("--in-status-for", "7d") == [waiting]
    assert ids("--in-status-for", "1d", "--status", "waiting_customer") == [waiting, recent]
    assert ids("--in-status-for", "9d") == []
    r = cli("list", "--in-status-for", "soon", expect=2)
    assert "--in-status-for: 'soon' is not a duration" in r.stderr


def test_routines_list_shows_each_routine(cli, db, waiting):
    rows = cli.json("routines", "list", "--json")
    assert [(r["workflow"], r["routine"], r["in_status"], r["after"]) for r in rows] == [
        ("support", "remind_subject", "waiting_customer", "3d"),
        ("support", "escalate_stale", "waiting_customer", "7d"),
    ]
    assert rows[1]["steps"] == ["event escalate", "assign team escalations", "priority high", "activity call_customer"]
    assert cli.json("routines", "list", "--workflow", "kyb", "--json") == []
    cli("routines", "list", "--workflow", "nope", expect=3)
    cli("routines", "run", "--routine", "nope", expect=3)


@pytest.mark.parametrize(
    "routine, path, message",
    [
        ({"in_status": "waiting"}, "$.routines[0].in_status", "unknown status 'waiting'"),
        ({"do": [{"event": "ask"}]}, "$.routines[0].do[0].event", "starts from none of waiting_customer"),
        ({"do": [{"event": "nope"}]}, "$.routines[0].do[0].event", "no action 'nope'"),
        ({"time": "business"}, "$.routines[0].time", "business time needs the workflow's sla.business_hours"),
        ({"when": "data.[["}, "$.routines[0].when", "not a valid JMESPath expression"),
        ({"do": [{"tag": "+a b"}]}, "$.routines[0].do[0].tag", "is not +TAG or -TAG"),
        ({"do": [{"tag": "+a", "note": "x"}]}, "$.routines[0].do[0]", "exactly one of"),
        ({"after": "3 days"}, "$.routines[0].after", ""),
        ({"do": [{"priority": "asap"}]}, "$.routines[0].do[0].priority", ""),
    ],
)
def test_validate_names_a_bad_routine_by_its_path(cli, tmp_path, routine, path, message):
    wf = support_workflow()
    wf["routines"] = [{**wf["routines"][0], **routine}]
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(wf))
    r = cli("workflows", "validate", file, expect=6)
    found = [line for line in (r.stdout + r.stderr).splitlines() if path in line]
    assert found, r.stdout + r.stderr
    assert message in found[0]


def test_the_readme_crontab_line_uses_an_absolute_path():
    readme = (Path(__file__).resolve().parent.parent / "docs" / "workflows.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if "routines run" in line and line.lstrip()[:1] in "*0123456789"]
    assert lines, "no crontab line for routines run"
    assert all("/casectl routines run" in line and " /" in line for line in lines)
