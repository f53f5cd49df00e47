"""Activities (seed 002): created from requirements with a config snapshot, added
and handed to teams, states, results, decisions, the results page across cases,
and the refusals."""

from __future__ import annotations

import json

import pytest
from casectl.rules import BUILTIN, workflow_to_dict

from conftest import snapshot


def acts(cli, case: str) -> dict:
    return {a["type"]: a for a in cli.json("activities", case, "--json")["activities"]}


@pytest.fixture
def case(cli, db):
    return cli(
        "create", "-w", "screening", "--subject-email", "sam@example.com", "--subject-name", "Sam Poe"
    ).stdout.strip()


def test_requirements_create_activities_with_a_snapshot(cli, case, db, tmp_path):
    a = acts(cli, case)
    assert list(a) == ["basic_details", "dbs_enhanced", "document_upload"]
    assert all(x["state"] == "pending" and x["decision"] is None for x in a.values())
    dbs = a["dbs_enhanced"]
    assert dbs["team"] == "dbs" and dbs["label"] == "DBS Enhanced"
    assert dbs["requirement"]["config"] == {"level": "enhanced", "barring_lists": ["adults", "children"]}
    assert dbs["requirement"]["workflow_version"] == 2
    assert "activity.add (A-2 dbs_enhanced required by screening v2 (team dbs))" in cli("history", case).stdout
    # The requirement changes; a case keeps the configuration it was created with.
    d = workflow_to_dict(BUILTIN["screening"])
    d.update(name="vetting", version=1)
    for version, lists in ((1, ["adults", "children"]), (2, ["children"])):
        d["version"] = version
        d["requirements"][1]["config"] = {"level": "enhanced", "barring_lists": lists}
        path = tmp_path / f"vetting_v{version}.json"
        path.write_text(json.dumps(d))
        cli("workflows", "add", str(path))
        if version == 1:
            older = cli("create", "-w", "vetting").stdout.strip()
    newer = cli("create", "-w", "vetting").stdout.strip()
    assert acts(cli, newer)["dbs_enhanced"]["requirement"]["config"]["barring_lists"] == ["children"]
    assert acts(cli, newer)["dbs_enhanced"]["requirement"]["workflow_version"] == 2
    assert acts(cli, older)["dbs_enhanced"]["requirement"]["config"]["barring_lists"] == ["adults", "children"]
    assert acts(cli, older)["dbs_enhanced"]["requirement"]["workflow_version"] == 1


def test_add_an_activity_and_hand_it_to_a_team(cli, case):
    out = cli.json("activity", case, "add", "right_to_work", "--team", "hr", "--label", "Right to work", "--json")
    assert out["id"] == "A-4" and out["team"] == "hr" and out["state"] == "pending"
    assert out["requirement"] == {"type": "right_to_work", "added_by": "tester"}
    cli("activity", case, "right_to_work", "assign", "--assignee", "dana")
    a = acts(cli, case)["right_to_work"]
    assert a["assignee"] == "dana" and a["team"] == "hr"
    hist = cli("history", case).stdout
    assert "activity.add (A-4 right_to_work added for team hr)" in hist
    assert "activity.assign (A-4 right_to_work handed to assignee dana)" in hist


def test_add_refusals(cli, case, db):
    before = snapshot(db)
    r = cli("activity", case, "add", "x", "--team", "a", "--assignee", "b", expect=2)
    assert "not both" in r.stderr
    r = cli("activity", case, "add", "Bad Type", expect=6)
    assert "lower-case letters" in r.stderr
    r = cli("activity", case, "add", expect=2)
    assert "verbs: add, state, result, decide, assign" in r.stderr
    assert snapshot(db) == before


def test_states_results_and_decisions(cli, case):
    cli("activity", case, "dbs_enhanced", "state", "in_progress")
    cli("activity", case, "A-2", "result", "certificate=001234", "outcome=clear", "checks.barred=false")
    cli("activity", case, "A-2", "result", "outcome=clear_with_notes", "--actor", "eve")
    a = acts(cli, case)["dbs_enhanced"]
    assert a["result"] == {"certificate": "001234", "outcome": "clear_with_notes", "checks": {"barred": False}}
    assert cli.json("show", case, "--json")["last_editor"] == "eve"
    r = cli("activity", case, "A-2", "decide", "reviewed", expect=4)
    assert "the activity is in_progress; decide it once its results are in" in r.stderr
    cli("activity", case, "A-2", "state", "pending_activity_decision")
    out = cli.json("activity", case, "A-2", "decide", "reviewed", "--json", "--actor", "kim")
    assert out["decision"] == "reviewed" and out["state"] == "complete" and out["decided_by"] == "kim"
    r = cli("activity", case, "A-2", "state", "in_progress", expect=4)
    assert "the activity is complete, which is final" in r.stderr
    events = [e for e in cli.json("history", case, "--json")["events"] if e["kind"].startswith("activity.")]
    assert [e["kind"] for e in events[3:]] == [
        "activity.state",
        "activity.result",
        "activity.result",
        "activity.state",
        "activity.decide",
    ]
    assert events[-1]["data"]["decision"] == "reviewed"


def test_same_state_is_a_no_op(cli, case, db):
    before = snapshot(db)
    r = cli("activity", case, "A-1", "state", "pending")
    assert "(unchanged)" in r.stdout
    assert snapshot(db) == before


def test_activity_refusals(cli, case, db):
    before = snapshot(db)
    r = cli("activity", case, "A-1", "state", "finished", expect=6)
    assert "'finished' is not an activity state of workflow screening" in r.stderr and "awaiting_agent" in r.stderr
    r = cli("activity", case, "A-9", "state", "complete", expect=3)
    assert "has no activity 'A-9'" in r.stderr and "A-1 basic_details" in r.stderr
    r = cli("activity", case, "A-1", "frobnicate", expect=2)
    assert "unknown activity verb 'frobnicate'" in r.stderr
    r = cli("activity", case, "A-1", "result", "novalue", expect=6)
    assert "'novalue' is not KEY=VALUE" in r.stderr
    cli("activity", case, "A-1", "state", "pending_activity_decision")
    before = snapshot(db)
    r = cli("activity", case, "A-1", "decide", "approved", expect=6)
    assert "'approved' is not a decision of workflow screening (decisions: reviewed)" in r.stderr
    assert snapshot(db) == before


def test_type_names_must_be_unique_to_be_used(cli, case, db):
    cli("activity", case, "add", "dbs_enhanced")
    before = snapshot(db)
    r = cli("activity", case, "dbs_enhanced", "state", "in_progress", expect=2)
    assert "has 2 'dbs_enhanced' activities (A-2, A-4); name one by its id" in r.stderr
    assert snapshot(db) == before


def test_cancelled_activity_takes_no_results(cli, case, db):
    cli("activity", case, "A-3", "state", "cancelled", "--reason", "not needed")
    before = snapshot(db)
    r = cli("activity", case, "A-3", "result", "x=1", expect=4)
    assert "it is cancelled" in r.stderr
    assert snapshot(db) == before


def test_case_cannot_complete_until_activities_are_complete_and_decided(cli, case):
    cli("status", case, "pending_case_decision")
    cli("activity", case, "A-2", "state", "in_progress")
    r = cli("act", case, "complete", expect=4)
    assert (
        "activities not complete: A-1 (basic_details: pending), A-2 (dbs_enhanced: in_progress), "
        "A-3 (document_upload: pending)"
    ) in r.stderr
    for a in ("A-1", "A-2", "A-3"):
        cli("activity", case, a, "state", "complete")
    r = cli("act", case, "complete", expect=4)
    assert "activities without a decision: A-1 (basic_details), A-2 (dbs_enhanced), A-3 (document_upload)" in r.stderr
    cli("activity", case, "A-1", "decide", "reviewed")
    cli("activity", case, "A-2", "decide", "reviewed")
    r = cli("act", case, "complete", expect=4)
    assert "activities without a decision: A-3 (document_upload)" in r.stderr
    assert "activities not complete" not in r.stderr
    cli("activity", case, "A-3", "decide", "reviewed")
    out = cli.json("act", case, "complete", "--json")
    assert out["to"] == "complete" and out["case"]["decision"] == "reviewed"
    r = cli("activity", case, "A-1", "decide", "reviewed", expect=4)
    assert "the case is complete (final)" in r.stderr


def test_custom_decisions(cli, db, tmp_path):
    d = workflow_to_dict(BUILTIN["screening"])
    d.update(
        name="vetting",
        version=1,
        decisions=["clear", "adverse"],
        requirements=[{"type": "credit_check", "label": "Credit check"}],
    )
    path = tmp_path / "vetting.json"
    path.write_text(json.dumps(d))
    cli("workflows", "add", str(path))
    cid = cli("create", "-w", "vetting").stdout.strip()
    cli("activity", cid, "credit_check", "state", "pending_activity_decision")
    r = cli("activity", cid, "credit_check", "decide", "reviewed", expect=6)
    assert "(decisions: clear, adverse)" in r.stderr
    assert cli.json("activity", cid, "credit_check", "decide", "adverse", "--json")["decision"] == "adverse"
    cli("status", cid, "pending_case_decision")
    out = cli.json("act", cid, "complete", "--decision", "clear", "--json")
    assert out["case"]["decision"] == "clear"


def test_activities_across_cases(cli, db):
    c1 = cli("create", "-w", "screening", "--subject-name", "One").stdout.strip()
    c2 = cli("create", "-w", "screening", "--subject-name", "Two").stdout.strip()
    cli("activity", c1, "dbs_enhanced", "state", "pending_activity_decision")
    cli("activity", c2, "add", "reference_check", "--team", "hr", "--assignee", "dana", expect=2)
    cli("activity", c2, "add", "reference_check", "--team", "hr")
    rows = json.loads(cli("activities", "--all", "--format", "json").stdout)
    assert len(rows) == 7
    rows = json.loads(cli("activities", "--all", "--state", "pending_activity_decision", "--json").stdout)
    assert [(r["case"], r["type"]) for r in rows] == [(c1, "dbs_enhanced")]
    lines = cli("activities", "--all", "--team", "hr", "--format", "ndjson").stdout.splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["reference_check"]
    rows = json.loads(cli("activities", "--all", "--type", "dbs_enhanced", "--team", "dbs", "--json").stdout)
    assert [r["case"] for r in rows] == [c1, c2]
    csv_out = cli(
        "activities", "--all", "--type", "basic_details", "--format", "csv", "--fields", "id,case,subject_name,state"
    ).stdout.splitlines()
    assert csv_out == ["id,case,subject_name,state", f"A-1,{c1},One,pending", f"A-4,{c2},Two,pending"]
    assert cli("activities", "--all", "--state", "complete").stdout == ""
    r = cli("activities", "--all", "--state", "done", expect=6)
    assert "unknown activity state 'done'" in r.stderr


def test_activities_usage(cli, case):
    assert "--all" in cli("activities", expect=2).stderr
    assert "not both" in cli("activities", case, "--all", expect=2).stderr
    assert "go with --all" in cli("activities", case, "--state", "pending", expect=2).stderr
    assert "unknown field: nope" in cli("activities", "--all", "--fields", "id,nope", expect=2).stderr
    assert cli("activities", "C-404", expect=3).exit_code == 3


def test_show_lists_activities(cli, case):
    cli("activity", case, "A-2", "state", "in_progress")
    show = cli("show", case).stdout
    assert "activities:" in show and "A-2    dbs_enhanced" in show and "in_progress" in show
    doc = cli.json("show", case, "--json")
    assert [a["id"] for a in doc["activities"]] == ["A-1", "A-2", "A-3"]
