"""Conditions on a case's data (JMESPath) in guards and routes, routes per source status, and
automatic transitions with conditions."""

from __future__ import annotations

import json

import pytest
from casectl import rules

WORKFLOW = {
    "name": "review",
    "version": 1,
    "initial": "collection",
    "statuses": [
        {"name": "collection"},
        {"name": "manual_review"},
        {"name": "auto_review"},
        {"name": "approved", "final": True},
        {"name": "rejected", "final": True},
    ],
    "actions": [
        {
            "name": "submit",
            "from": ["collection"],
            "to": [
                {"to": "manual_review", "when": "length(data.ubos || `[]`) == `0`"},
                {"to": "auto_review"},
            ],
        },
        {
            "name": "approve",
            "guards": ["data.score >= `50`"],
            "to": {
                "manual_review": "approved",
                "auto_review": [{"to": "approved", "when": "subject.country == 'GB'"}, {"to": "rejected"}],
            },
        },
        {
            "name": "escalate",
            "trigger": "auto",
            "from": ["auto_review"],
            "guards": ["data.amount > `1000`"],
            "to": "manual_review",
        },
        {"name": "reject", "from": ["collection", "manual_review", "auto_review"], "to": "rejected"},
    ],
}


@pytest.fixture
def review(cli, db, tmp_path):
    path = tmp_path / "review.json"
    path.write_text(json.dumps(WORKFLOW))
    cli("workflows", "add", path)
    return path


def new_case(cli, data: dict, country: str = "GB") -> str:
    args = [
        "--data",
        json.dumps(data),
        "--country",
        country,
        "--subject-email",
        f"{len(str(data))}{country}@example.com",
    ]
    return cli("create", "--workflow", "review", *args).stdout.strip()


def status(cli, case: str) -> str:
    return cli.json("show", case, "--json")["status"]


def test_a_route_follows_the_data(cli, review):
    none = new_case(cli, {"score": 70})
    some = new_case(cli, {"score": 70, "ubos": [{"name": "Mei"}]})
    cli("act", none, "submit")
    cli("act", some, "submit")
    assert status(cli, none) == "manual_review" and status(cli, some) == "auto_review"


def test_show_says_where_a_conditional_route_would_take_the_case_now(cli, review):
    none = new_case(cli, {"score": 70})
    some = new_case(cli, {"score": 70, "ubos": [{"name": "Mei"}]})
    assert "submit (-> manual_review, by its conditions now)" in cli("show", none).stdout
    assert "submit (-> auto_review, by its conditions now)" in cli("show", some).stdout
    allowed = cli.json("show", some, "--json")["allowed_actions"]
    assert {"action": "submit", "to": "auto_review"} in allowed
    assert "reject (->" not in cli("show", none).stdout  # one route: nothing to explain


def test_a_guard_on_data_refuses_in_words(cli, review):
    case = new_case(cli, {"score": 20})
    cli("act", case, "submit")
    r = cli("act", case, "approve", expect=4)
    assert "condition not met: data.score >= `50`" in r.stderr
    shown = cli("show", case).stdout
    assert "condition not met: data.score >= `50`" in shown
    assert status(cli, case) == "manual_review"


def test_one_action_leads_to_different_statuses_from_different_statuses(cli, review):
    manual = new_case(cli, {"score": 90})
    cli("act", manual, "submit")
    cli("act", manual, "approve")
    assert status(cli, manual) == "approved"
    british = new_case(cli, {"score": 90, "ubos": [1]}, "GB")
    french = new_case(cli, {"score": 90, "ubos": [1]}, "FR")
    for case in (british, french):
        cli("act", case, "submit")
        cli("act", case, "approve")
    assert status(cli, british) == "approved" and status(cli, french) == "rejected"


def test_an_automatic_transition_fires_only_when_its_condition_holds(cli, review):
    big = new_case(cli, {"score": 90, "ubos": [1], "amount": 5000})
    small = new_case(cli, {"score": 90, "ubos": [1], "amount": 10})
    cli("act", big, "submit")
    cli("act", small, "submit")
    assert status(cli, big) == "manual_review" and status(cli, small) == "auto_review"
    kinds = [(e["kind"], e["action"]) for e in cli.json("history", big, "--json")["events"]]
    assert ("system", "escalate") in kinds
    assert cli("db", "check").exit_code == 0


def test_a_condition_on_a_missing_or_mistyped_value_does_not_hold(cli, review):
    case = new_case(cli, {"score": "high"})  # a string compared with a number: null in JMESPath
    cli("act", case, "submit")
    assert "condition not met" in cli("act", case, "approve", expect=4).stderr


@pytest.mark.parametrize(
    "where,value,path",
    [
        ("route", "length(data.ubos ||", "$.actions[0].to[0].when"),
        ("guard", "data.score >>= 3", "$.actions[1].guards[0]"),
    ],
)
def test_a_bad_expression_is_named_with_its_json_path(cli, db, tmp_path, where, value, path):
    doc = json.loads(json.dumps(WORKFLOW))
    if where == "route":
        doc["actions"][0]["to"][0]["when"] = value
    else:
        doc["actions"][1]["guards"][0] = value
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    r = cli("workflows", "validate", f, expect=6)
    assert path in r.stderr and "not a valid JMESPath expression" in r.stderr
    cli("workflows", "add", f, expect=6)


def test_route_from_a_status_the_action_does_not_leave_is_refused(cli, db, tmp_path):
    doc = json.loads(json.dumps(WORKFLOW))
    doc["actions"][0]["to"] = [{"to": "manual_review", "from": ["auto_review"]}, {"to": "auto_review"}]
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    r = cli("workflows", "validate", f, expect=6)
    assert "$.actions[0].to[0].from[0]" in r.stderr


def test_a_conditional_last_route_from_a_status_is_refused(cli, db, tmp_path):
    doc = json.loads(json.dumps(WORKFLOW))
    doc["actions"][1]["to"]["auto_review"] = [{"to": "approved", "when": "subject.country == 'GB'"}]
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    assert "no unconditional last route from 'auto_review'" in cli("workflows", "validate", f, expect=6).stderr


def test_the_definition_round_trips():
    wf = rules.workflow_from_dict(WORKFLOW)
    assert rules.workflow_from_dict(rules.workflow_to_dict(wf)) == wf
    approve = wf.action("approve")
    assert approve is not None and approve.sources == ("manual_review", "auto_review")
    assert approve.targets_from("manual_review") == ("approved",)
    assert rules.lint(wf) == []


def test_builtin_workflows_need_no_case_document():
    assert not any(wf.uses_conditions for wf in rules.BUILTIN.values())


LEAD_ONLY = {
    "name": "guarded",
    "initial": "open",
    "statuses": [{"name": "open"}, {"name": "escalated"}, {"name": "closed", "final": True}],
    "actions": [
        {"name": "escalate", "from": ["open"], "to": "escalated"},
        {"name": "close", "from": ["open", "escalated"], "to": "closed", "roles": ["lead", "manager"]},
    ],
    "set_status": {"from": ["open", "escalated"], "to": ["closed"]},
}


@pytest.fixture
def guarded(cli, db, tmp_path):
    path = tmp_path / "guarded.json"
    path.write_text(json.dumps(LEAD_ONLY))
    cli("workflows", "add", path)
    return cli("create", "--workflow", "guarded").stdout.strip()


def test_an_action_limited_to_roles_names_the_role_needed(cli, guarded):
    r = cli("act", guarded, "close", "--actor", "ann", expect=4)
    assert "close needs the role lead or manager; ann has none" in r.stderr
    assert "casectl users add ann --role lead" in r.stderr
    r = cli("status", guarded, "closed", "--actor", "ann", expect=4)  # a direct change follows the action's roles
    assert "needs the role lead" in r.stderr
    cli("users", "add", "ann", "--role", "lead")
    cli("act", guarded, "close", "--actor", "ann")
    assert cli.json("show", guarded, "--json")["status"] == "closed"


def test_users_list_and_rm(cli, guarded):
    cli("users", "add", "bob", "--role", "manager", "--role", "auditor")
    cli("users", "add", "bob", "--role", "lead")
    [bob] = cli.json("users", "list", "--json")
    assert bob["name"] == "bob" and bob["roles"] == ["auditor", "lead", "manager"] and bob["created_by"] == "tester"
    assert cli("users", "list", "--format", "csv").stdout.splitlines()[1].startswith("bob,")
    cli("users", "rm", "bob", "--role", "lead", "--role", "manager")
    assert cli.json("users", "list", "--json")[0]["roles"] == ["auditor"]
    assert (
        "needs the role lead or manager; bob has auditor"
        in cli("act", guarded, "close", "--actor", "bob", expect=4).stderr
    )
    cli("users", "rm", "bob")
    assert cli.json("users", "list", "--json") == []
    cli("users", "rm", "bob", expect=3)
    cli("users", "add", "bob", "--role", "Bad Role", expect=6)
