"""Request Tracker's default lifecycle, shipped under examples/workflows/, driven through its
main paths: create, open, stall, resolve, re-open, delete and undelete, with categories and rights."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "workflows"


@pytest.fixture
def rt(cli, db):
    cli("workflows", "add", EXAMPLES / "rt-default.json")
    cli("users", "add", "ann", "--role", "modify_ticket")
    cli("users", "add", "root_admin", "--role", "modify_ticket", "--role", "delete_ticket")
    return cli("create", "--workflow", "rt_default", "--actor", "ann").stdout.strip()


def shown(cli, case: str) -> dict:
    return cli.json("show", case, "--json")


def test_every_example_validates(cli):
    for path in sorted(EXAMPLES.glob("*.json")):
        assert cli("workflows", "validate", path).exit_code == 0, path


def test_the_rt_lifecycle_runs_its_main_paths(cli, rt):
    ann = ("--actor", "ann")
    assert shown(cli, rt)["status"] == "new"
    cli("act", rt, "open", *ann)
    cli("act", rt, "stall", *ann)
    assert shown(cli, rt)["status"] == "stalled"
    cli("act", rt, "open", *ann)
    cli("act", rt, "resolve", *ann)
    case = shown(cli, rt)
    assert case["status"] == "resolved" and case["decision"] == "resolved" and case["decided_by"] == "ann"
    cli("act", rt, "reopen", *ann)
    case = shown(cli, rt)
    assert case["status"] == "open" and case["decision"] is None and case["decided_at"] is None
    reopened = cli.json("history", rt, "--json")["events"][-1]
    assert reopened["action"] == "reopen" and reopened["data"]["reopened"] == "resolved"
    assert cli("db", "check").exit_code == 0


def test_rights_per_transition(cli, rt):
    r = cli("act", rt, "delete", "--actor", "ann", expect=4)
    assert "delete needs the role delete_ticket; ann has modify_ticket" in r.stderr
    cli("act", rt, "resolve", "--actor", "nobody", expect=4)
    cli("act", rt, "delete", "--actor", "root_admin")
    cli("act", rt, "undelete", "--actor", "ann", expect=4)
    cli("act", rt, "undelete", "--actor", "root_admin")
    assert shown(cli, rt)["status"] == "open"


def test_categories_are_shown_and_filter(cli, rt):
    second = cli("create", "--workflow", "rt_default", "--status", "open").stdout.strip()
    cli("act", second, "resolve", "--actor", "ann")
    cli("create", "--workflow", "simple")
    ids = lambda *a: cli("list", "--ids", *a).stdout.split()  # noqa: E731
    assert ids("--category", "initial") == [rt, "C-3"]  # simple's open is its initial status
    assert ids("--category", "inactive") == [second]
    assert ids("--category", "active", "--workflow", "rt_default") == []
    assert "unknown category 'closed'" in cli("list", "--category", "closed", expect=2).stderr
    table = cli.json("workflows", "show", "rt_default", "--json")["table"]
    assert [r["category"] for r in table] == ["initial", "active", "active", "inactive", "inactive", "inactive"]
    assert "Category" in cli("workflows", "show", "rt_default").stdout


def test_creating_in_a_final_status_stays_refused(cli, rt):
    cli("create", "--workflow", "rt_default", "--status", "resolved", expect=4)


def test_leaving_a_final_status_needs_reopens(cli, db, tmp_path):
    import json

    doc = json.loads((EXAMPLES / "rt-default.json").read_text())
    del doc["actions"][6]["reopens"]
    f = tmp_path / "x.json"
    f.write_text(json.dumps(doc))
    assert '"reopens": true' in cli("workflows", "validate", f, expect=6).stderr
    doc["actions"][6]["reopens"] = True
    doc["actions"][6]["to"] = "rejected"
    f.write_text(json.dumps(doc))
    assert "into a final status" in cli("workflows", "validate", f, expect=6).stderr
