"""Saved and built-in views: add, list, rm, and --view on list/take/stats."""

from __future__ import annotations

from conftest import raw_connect


def test_add_list_use_and_remove_a_view(cli, db):
    cli("create", "--workflow", "simple", "--country", "HK", "--subject-email", "a@x.hk", "--tag", "vip")
    cli("create", "--workflow", "simple", "--country", "GB", "--subject-email", "b@x.uk")
    r = cli("views", "add", "hk-vip", "--country", "hk", "--tag", "vip")
    assert r.stdout.startswith("saved view hk-vip: ")
    assert cli("list", "--view", "hk-vip", "--ids").stdout.split() == ["C-1"]
    # Options given with --view narrow it further.
    assert cli("list", "--view", "hk-vip", "--status", "approved", "--ids").stdout.split() == []
    rows = cli.json("views", "list", "--json")
    mine = next(v for v in rows if v["name"] == "hk-vip")
    assert mine["builtin"] is False and "country: HK" in mine["description"]
    assert any(v["name"] == "kyb-manual-review" and v["builtin"] for v in rows)
    cli("views", "rm", "hk-vip")
    assert "hk-vip" not in cli("views", "list").stdout
    r = cli("list", "--view", "hk-vip", expect=3)
    assert "no view 'hk-vip'" in r.stderr


def test_builtin_views_per_workflow(cli, db):
    cli("create", "--workflow", "kyb")
    cli("event", "C-1", "collection_completed")
    cli("create", "--workflow", "kyb")
    assert cli("list", "--view", "kyb-manual-review", "--ids").stdout.split() == ["C-1"]
    assert cli("list", "--view", "kyb-collection-flow", "--ids").stdout.split() == ["C-2"]
    assert cli("list", "--view", "unassigned", "--ids").stdout.split() == ["C-1", "C-2"]


def test_relative_filters_stay_relative(cli, db, monkeypatch):
    cli("create", "--workflow", "simple", "--assignee", "ann")
    cli("create", "--workflow", "simple", "--assignee", "bob")
    cli("views", "add", "my-work", "--mine", "--actor", "ann")
    assert cli("list", "--view", "my-work", "--ids", "--actor", "bob").stdout.split() == ["C-2"]
    cli("views", "add", "late", "--overdue")
    assert cli("list", "--view", "late", "--ids").stdout.split() == []
    monkeypatch.setenv("CASECTL_NOW", "2099-01-01T00:00:00Z")
    assert cli("list", "--view", "late", "--ids").stdout.split() == ["C-1", "C-2"]


def test_view_bad_input_changes_nothing(cli, db):
    r = cli("views", "add", "empty", expect=6)
    assert "at least one filter" in r.stderr
    r = cli("views", "add", "bad name", "--open", expect=6)
    assert "view name" in r.stderr
    r = cli("views", "add", "kyb-open", "--open", expect=5)
    assert "built-in" in r.stderr
    cli("views", "add", "x", "--open")
    r = cli("views", "add", "x", "--closed", expect=5)
    assert "--replace" in r.stderr
    cli("views", "add", "x", "--closed", "--replace")
    r = cli("views", "rm", "kyb-open", expect=4)
    assert "built-in" in r.stderr
    r = cli("views", "rm", "nope", expect=3)
    c = raw_connect(db)
    try:
        assert [tuple(r) for r in c.execute("SELECT name, filters FROM views ORDER BY name")] == [
            ("x", '{"closed_only": true}')
        ]
    finally:
        c.close()
