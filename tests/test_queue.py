"""assign, unassign, take (with real concurrent processes), tag, note, list --mine/--unassigned, keyset paging."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import casectl_bin, raw_connect, snapshot


def make(cli, n, workflow="simple", **kw):
    out = []
    for i in range(n):
        args = ["create", "--workflow", workflow]
        for k, v in kw.items():
            args += [f"--{k.replace('_', '-')}", v]
        out.append(cli(*args).stdout.strip())
    return out


def events(db_path, case_id):
    c = raw_connect(db_path)
    try:
        return [r[0] for r in c.execute("SELECT kind FROM events WHERE case_id = ? ORDER BY id", (case_id,))]
    finally:
        c.close()


def test_assign_unassign_and_mine(cli, db):
    make(cli, 3)
    assert cli("assign", "C-1", "bob", "--team", "ops").stdout.strip() == "C-1: set assignee - -> bob, team - -> ops"
    cli("assign", "C-2", "tester")
    assert cli("list", "--mine", "--ids").stdout.split() == ["C-2"]
    assert cli("list", "--unassigned", "--ids").stdout.split() == ["C-3"]
    assert cli("list", "--team", "ops", "--ids").stdout.split() == ["C-1"]
    doc = cli.json("show", "C-1", "--json")
    assert (doc["assignee"], doc["team"]) == ("bob", "ops")
    assert cli("assign", "C-1", "bob").stdout.strip() == "C-1: unchanged"
    cli("unassign", "C-1")
    doc = cli.json("show", "C-1", "--json")
    assert (doc["assignee"], doc["team"]) == (None, "ops")
    assert events(db, 1) == ["created", "assigned", "assigned"]


def test_assign_bad_input_changes_nothing(cli, db):
    make(cli, 1)
    r = cli("assign", "C-1", expect=2)
    assert "give USER" in r.stderr
    r = cli("assign", "C-9", "bob", expect=3)
    assert "no case 'C-9'" in r.stderr
    r = cli("assign", "C-1", "two words", expect=6)
    assert "one word" in r.stderr
    assert cli.json("show", "C-1", "--json")["assignee"] is None
    assert events(db, 1) == ["created"]


def test_take_claims_oldest_actionable_and_skips_waiting(cli, db):
    make(cli, 1, workflow="kyb")  # collection_flow: no agent action, cannot be taken
    make(cli, 2)
    assert cli("take").stdout.strip() == "C-2"
    assert cli("take").stdout.strip() == "C-3"
    r = cli("take")  # an empty queue: exit 0, nothing on stdout, a note on stderr
    assert r.stdout == "" and "nothing to take" in r.stderr
    assert cli.json("take", "--json") is None
    assert cli.json("show", "C-2", "--json")["assignee"] == "tester"
    assert cli.json("show", "C-1", "--json")["assignee"] is None


def test_take_respects_filters_and_views(cli, db):
    make(cli, 1, workflow="kyb")
    make(cli, 2)
    r = cli("take", "--workflow", "kyb")  # kyb in collection_flow offers no agent action
    assert r.stdout == "" and "nothing to take" in r.stderr
    assert cli("take", "--view", "simple-open").stdout.strip() == "C-2"
    r = cli("take", "--view", "nope", expect=3)
    assert "no view 'nope'" in r.stderr


def test_two_agents_taking_at_once_never_get_the_same_case(run, cli, db):
    make(cli, 6)
    procs = [
        subprocess.Popen(
            [casectl_bin(), "take", "--actor", f"agent{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(8)
    ]
    outs = [(p.communicate(timeout=60), p.returncode) for p in procs]
    assert all(rc == 0 for _, rc in outs)
    taken = [o[0][0].strip() for o in outs if o[0][0].strip()]
    empty = [o for o in outs if not o[0][0].strip()]
    assert len(taken) == 6 and len(set(taken)) == 6
    assert len(empty) == 2 and all("nothing to take" in err for (_, err), _ in empty)
    c = raw_connect(db)
    try:
        assignees = [r[0] for r in c.execute("SELECT assignee FROM cases ORDER BY id")]
    finally:
        c.close()
    assert None not in assignees and len(set(assignees)) == 6


def test_tag_add_remove_and_filter(cli, db):
    make(cli, 2)
    assert cli("tag", "C-1", "+vip", "+hk").stdout.strip() == "C-1: +hk +vip (tags: hk, vip)"
    cli("tag", "C-1", "-hk")
    assert cli.json("show", "C-1", "--json")["tags"] == ["vip"]
    assert cli("list", "--tag", "vip", "--ids").stdout.split() == ["C-1"]
    r = cli("tag", "C-1", "+a,b", expect=6)
    assert "not +TAG" in r.stderr
    r = cli("tag", "C-1", "+x", "-x", expect=6)
    assert "both added and removed" in r.stderr
    assert cli.json("show", "C-1", "--json")["tags"] == ["vip"]


def test_notes_public_private_in_show_and_history(cli, db):
    make(cli, 1)
    cli("note", "C-1", "called the customer")
    cli("note", "C-1", "--private", "suspect forged passport")
    cli("note", "C-1", input="from stdin\n")
    doc = cli.json("show", "C-1", "--json")
    assert [(n["text"], n["private"]) for n in doc["notes"]] == [
        ("called the customer", False),
        ("suspect forged passport", True),
        ("from stdin", False),
    ]
    text = cli("show", "C-1").stdout
    assert "N-2" in text and "(private): suspect forged passport" in text
    hist = cli.json("history", "C-1", "--json")
    notes = [e for e in hist["events"] if e["kind"] == "note"]
    assert [e["data"]["private"] for e in notes] == [False, True, False]
    # The private text never enters the (exportable, hash-chained) event log.
    assert "forged" not in json.dumps(hist)
    assert "private note N-2" in cli("history", "C-1").stdout
    from casectl.services import queue as queue_service
    from casectl.store import connect

    conn = connect(db)
    assert [n["text"] for n in queue_service.notes(conn, 1)] == ["called the customer", "from stdin"]
    assert len(queue_service.notes(conn, [1], include_private=True)) == 3


def test_note_bad_input(cli, db):
    make(cli, 1)
    r = cli("note", "C-1", "   ", expect=6)
    assert "empty" in r.stderr
    r = cli("note", "C-7", "x", expect=3)
    assert cli.json("show", "C-1", "--json")["notes"] == []


def test_keyset_pages_cover_everything_once(cli, db):
    make(cli, 7)
    seen, after = [], None
    for _ in range(5):
        args = ["list", "--ids", "-n", "3", "--sort", "-created"] + (["--after", after] if after else [])
        r = cli(*args)
        seen += r.stdout.split()
        if "next page" not in r.stderr:
            break
        after = r.stderr.split("--after ")[1].strip()
    assert sorted(seen, key=lambda x: int(x[2:])) == [f"C-{i}" for i in range(1, 8)] and len(set(seen)) == 7
    r = cli("list", "-n", "3", "--ids", "--after", "C-3")
    assert r.stdout.split() == ["C-4", "C-5", "C-6"]
    r = cli("list", "--after", "C-3", "--sort", "created", expect=2)
    assert "default sort" in r.stderr
    r = cli("list", "--after", "garbage!!", "--sort", "created", expect=2)
    assert "not a cursor" in r.stderr


# --- priority after creation -------------------------------------------------------


def test_priority_is_set_recorded_and_left_alone_when_unchanged(cli, db):
    cid = cli("create", "-w", "simple", "--subject-name", "Ada").stdout.strip()
    out = cli("priority", cid, "urgent")
    assert out.stdout.strip() == f"{cid}: priority normal -> urgent"
    assert cli.json("show", cid, "--json")["priority"] == "urgent"
    [event] = [e for e in cli.json("history", cid, "--json")["events"] if e["kind"] == "priority"]
    assert event["actor"] == "tester" and event["data"]["priority"] == ["normal", "urgent"]
    again = cli.json("priority", cid, "urgent", "--json")
    assert again["event"] is None and again["previous"] == "urgent"
    assert len([e for e in cli.json("history", cid, "--json")["events"] if e["kind"] == "priority"]) == 1


def test_priority_from_stdin_is_all_or_nothing_and_a_bad_level_is_exit_2(cli, db, db_path):
    a = cli("create", "-w", "simple", "--subject-name", "A").stdout.strip()
    b = cli("create", "-w", "simple", "--subject-name", "B").stdout.strip()
    before = snapshot(db_path)
    r = cli("priority", "-", "high", input=f"{a}\nC-99\n", expect=3)
    assert "nothing was changed" in r.stderr and "C-99" in r.stderr
    dry = cli("priority", "-", "high", "--dry-run", input=f"{a}\n{b}\n")
    assert f"{a}: would set normal -> high" in dry.stdout
    bad = cli("priority", a, "bogus", expect=2)
    assert "not one of low, normal, high, urgent" in bad.stderr
    assert snapshot(db_path) == before
    cli("priority", "-", "low", input=f"{a}\n{b}\n")
    assert [c["priority"] for c in cli.json("list", "--json")] == ["low", "low"]


# --- the order take serves, and list --sort due ---------------------------------------------


@pytest.fixture
def queue_of_seven(cli, db, monkeypatch):
    """Seven open unassigned simple cases (SLA 48h from creation; a pending one is paused, no due):

    C-1 normal, created 00:00 pending, opened at 20:00: due +68h     C-5 high,   04:00: due +52h
    C-2 low,    01:00: due +49h                                      C-6 normal, 05:00 pending: no due
    C-3 urgent, 02:00 pending: no due                                C-7 normal, 06:00: due +54h
    C-4 urgent, 03:00: due +51h
    """

    def at(hour: int) -> None:
        monkeypatch.setenv("CASECTL_NOW", f"2026-01-01T{hour:02d}:00:00Z")

    for hour, priority, status in (
        (0, "normal", "pending"),
        (1, "low", "open"),
        (2, "urgent", "pending"),
        (3, "urgent", "open"),
        (4, "high", "open"),
        (5, "normal", "pending"),
        (6, "normal", "open"),
    ):
        at(hour)
        cli("create", "--workflow", "simple", "--priority", priority, "--status", status)
    at(20)
    cli("status", "C-1", "open")  # the SLA clock resumes with its 48h left
    monkeypatch.setenv("CASECTL_NOW", "2026-01-02T00:00:00Z")
    dues = {c["id"]: c["due_at"] for c in cli.json("list", "--json")}
    assert dues == {
        "C-1": "2026-01-03T20:00:00Z",
        "C-2": "2026-01-03T01:00:00Z",
        "C-3": None,
        "C-4": "2026-01-03T03:00:00Z",
        "C-5": "2026-01-03T04:00:00Z",
        "C-6": None,
        "C-7": "2026-01-03T06:00:00Z",
    }
    return cli


def taken(cli, *args: str) -> list[str]:
    out = []
    while case := cli("take", *args).stdout.strip():
        out.append(case)
    return out


@pytest.mark.parametrize(
    "sort, order",
    [
        (None, ["C-4", "C-3", "C-5", "C-7", "C-1", "C-6", "C-2"]),  # urgent, high, normal, low; soonest due first
        ("priority,due,age", ["C-4", "C-3", "C-5", "C-7", "C-1", "C-6", "C-2"]),
        ("due", ["C-2", "C-4", "C-5", "C-7", "C-1", "C-3", "C-6"]),  # no due time: last, oldest first
        ("age", ["C-1", "C-2", "C-3", "C-4", "C-5", "C-6", "C-7"]),
        ("priority", ["C-3", "C-4", "C-5", "C-1", "C-6", "C-7", "C-2"]),  # then the oldest
        ("due,priority", ["C-2", "C-4", "C-5", "C-7", "C-1", "C-3", "C-6"]),
        ("sla, oldest", ["C-2", "C-4", "C-5", "C-7", "C-1", "C-3", "C-6"]),  # aliases
    ],
)
def test_take_serves_the_most_urgent_then_the_soonest_due_then_the_oldest(queue_of_seven, sort, order):
    assert taken(queue_of_seven, *(["--sort", sort] if sort else [])) == order


def test_take_order_holds_across_batches_and_with_filters(queue_of_seven, db_path):
    from casectl.filters import CaseFilter
    from casectl.store import connect
    from casectl.store import queue as queue_store

    cli = queue_of_seven
    assert taken(cli, "--priority", "normal") == ["C-7", "C-1", "C-6"]
    conn = connect(db_path)
    try:
        levels = ("urgent", "high", "normal", "low")
        for order in (("priority", "due", "age"), ("due", "age"), ("age",), ("due", "priority", "age")):
            whole = [c["id"] for c in queue_store.queue(conn, CaseFilter(), order=order, levels=levels)]
            # Two at a time: each batch starts after the last one's keys, none is seen twice or missed.
            paged = [c["id"] for c in queue_store.queue(conn, CaseFilter(), order=order, levels=levels, batch=2)]
            assert paged == whole and len(whole) == 4, order  # C-1, C-6, C-7 are taken
    finally:
        conn.close()


def test_take_sort_refuses_what_it_does_not_know(cli, db):
    for bad in ("colour", "due,colour", "", "due,due"):
        r = cli("take", "--sort", bad, expect=2)
        assert r.stderr.startswith("casectl: error: --sort: ") and r.stdout == ""
        assert r.stderr.count("\n") == 1  # one line
    assert "priority (urgent first)" in cli("take", "--sort", "colour", expect=2).stderr


def test_list_sort_due_puts_cases_without_a_due_time_last_both_ways_and_pages(queue_of_seven):
    cli = queue_of_seven
    ascending = ["C-2", "C-4", "C-5", "C-7", "C-1", "C-3", "C-6"]
    descending = ["C-1", "C-7", "C-5", "C-4", "C-2", "C-6", "C-3"]
    assert cli("list", "--sort", "due", "--ids").stdout.split() == ascending
    assert cli("list", "--sort", "-due", "--ids").stdout.split() == descending
    for sort, expected in (("due", ascending), ("-due", descending)):
        for size in ("1", "2", "3"):
            seen, after = [], None
            for _ in range(10):
                r = cli("list", "--ids", "-n", size, "--sort", sort, *(["--after", after] if after else []))
                seen += r.stdout.split()
                if "next page" not in r.stderr:
                    break
                after = r.stderr.split("--after ")[1].strip()
            assert seen == expected, (sort, size)
