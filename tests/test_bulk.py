"""Bulk through pipes: `list --ids | act - ...`, assign/tag/note -: one transaction, all or nothing."""

from __future__ import annotations

from contextlib import closing

from conftest import raw_connect


def snapshot(db):
    with closing(raw_connect(db)) as c:
        return (
            [tuple(r) for r in c.execute("SELECT id, status, assignee, version FROM cases ORDER BY id").fetchall()],
            c.execute("SELECT count(*) FROM events").fetchone()[0],
        )


def test_act_many_in_one_transaction(cli, db):
    for _ in range(3):
        cli("create", "--workflow", "simple")
    ids = cli("list", "--ids").stdout
    r = cli("act", "-", "reject", "--reason", "duplicate", input=ids)
    assert r.stdout.splitlines() == [f"C-{i}: decline: moved open -> declined" for i in (1, 2, 3)]
    assert [row[1] for row in snapshot(db)[0]] == ["declined"] * 3


def test_one_refusal_rolls_back_the_whole_batch(cli, db):
    cli("create", "--workflow", "simple")
    cli("create", "--workflow", "kyb")  # collection_flow: reject not allowed
    cli("create", "--workflow", "simple")
    before = snapshot(db)
    r = cli("act", "-", "reject", "--reason", "x", input="C-1\nC-2\nC-3\n", expect=4)
    assert "1 of 3 cases refused" in r.stderr and "C-2: cannot reject case C-2" in r.stderr
    assert snapshot(db) == before
    r = cli("assign", "-", "bob", input="C-1\nC-404\n", expect=3)
    assert "C-404" in r.stderr and snapshot(db) == before


def test_dry_run_says_what_would_change_and_what_is_refused(cli, db):
    cli("create", "--workflow", "simple")
    cli("create", "--workflow", "kyb")
    before = snapshot(db)
    r = cli("act", "-", "approve", "--dry-run", input="C-1\nC-2\n", expect=4)
    assert r.stdout.strip() == "C-1: approve: would move open -> approved"
    assert "C-2: refused: cannot approve case C-2" in r.stderr
    doc = cli.json("act", "-", "approve", "--dry-run", "--json", input="C-1\n")
    assert doc["dry_run"] is True and doc["results"][0]["to"] == "approved"
    assert snapshot(db) == before


def test_assign_tag_note_from_stdin(cli, db):
    for _ in range(2):
        cli("create", "--workflow", "simple")
    ids = cli("list", "--ids").stdout
    cli("assign", "-", "ann", "--team", "ops", input=ids)
    cli("tag", "-", "+batch", input=ids)
    cli("note", "-", "bulk reviewed", input=ids)
    for i in (1, 2):
        doc = cli.json("show", f"C-{i}", "--json")
        assert (doc["assignee"], doc["team"], doc["tags"]) == ("ann", "ops", ["batch"])
        assert [n["text"] for n in doc["notes"]] == ["bulk reviewed"]
    r = cli("note", "-", input=ids, expect=2)
    assert "give the note TEXT" in r.stderr


def test_empty_stdin_is_a_no_op_and_table_lines_work(cli, db):
    cli("create", "--workflow", "simple")
    r = cli("act", "-", "approve", input="")
    assert "nothing to do" in r.stderr
    table = cli("list").stdout  # tab-separated rows: the first field is the id
    cli("act", "-", "approve", input="# comment\n\n" + table)
    assert snapshot(db)[0][0][1] == "approved"


def test_act_many_from_a_real_pipe(run, db):
    for _ in range(2):
        assert run("create", "--workflow", "simple").returncode == 0
    ids = run("list", "--ids").stdout
    p = run("act", "-", "approve", input=ids)
    assert p.returncode == 0, p.stderr
    assert run("list", "--status", "approved", "--ids").stdout == ids
