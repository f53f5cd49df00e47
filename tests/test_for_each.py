"""Child workflows from data (children.for_each): a KYB parent starts one KYC child case per UBO
in its data when it enters a status, each child's subject and data taken from its element, and a
concluded child's result is merged back into the parent's block (Ballerine's kyb_kyc)."""

from __future__ import annotations

import copy
import json

import pytest
from casectl import rules

from conftest import snapshot

KYC_EMAIL = {
    "name": "kyc_email",
    "version": 1,
    "initial": "pending_verification",
    "statuses": [
        {"name": "pending_verification", "waiting": True},
        {"name": "manual_review"},
        {"name": "approved", "final": True},
        {"name": "rejected", "final": True},
        {"name": "withdrawn", "final": True},
    ],
    "actions": [
        {"name": "submitted", "trigger": "system", "from": ["pending_verification"], "to": "manual_review"},
        {"name": "approve", "from": ["manual_review"], "to": "approved", "decision": "approved"},
        {
            "name": "reject",
            "from": ["pending_verification", "manual_review"],
            "to": "rejected",
            "decision": "rejected",
            "reason_required": True,
        },
        {
            "name": "withdraw",
            "trigger": "system",
            "from": ["pending_verification", "manual_review"],
            "to": "withdrawn",
            "decision": "withdrawn",
        },
    ],
    "block_kinds": ["user_data", "document"],
}

KYB_KYC = {
    "name": "kyb_kyc",
    "version": 1,
    "initial": "draft",
    "statuses": [
        {"name": "draft"},
        {"name": "collection_flow", "waiting": True},
        {"name": "pending_kyc"},
        {"name": "manual_review"},
        {"name": "approved", "final": True},
        {"name": "rejected", "final": True},
    ],
    "actions": [
        {"name": "start", "from": ["draft"], "to": "collection_flow"},
        {
            "name": "collected",
            "trigger": "auto",
            "from": ["collection_flow"],
            "to": [{"to": "manual_review", "when": "length(data.ubos || `[]`) == `0`"}, {"to": "pending_kyc"}],
        },
        {
            "name": "kyc_done",
            "trigger": "auto",
            "from": ["pending_kyc"],
            "guards": ["no_kyc_pending"],
            "to": "manual_review",
        },
        {"name": "revise", "from": ["manual_review"], "to": "collection_flow"},
        {"name": "approve", "from": ["manual_review"], "to": "approved", "guards": ["blocks_approved"]},
        {
            "name": "reject",
            "from": ["draft", "collection_flow", "pending_kyc", "manual_review"],
            "to": "rejected",
            "reason_required": True,
        },
    ],
    "children": {
        "workflow": "kyc",
        "on_parent_final": "withdraw",
        "for_each": {
            "items": "data.ubos",
            "on": ["collection_flow"],
            "workflow": "kyc_email",
            "block": "ubo_{index}",
            "subject": {
                "name": "join(' ', [firstName, lastName])",
                "email": "email",
                "dob": "dateOfBirth",
                "country": "nationality",
            },
            "data": "@",
            "result": "{decision: decision, status: status, data: data}",
        },
    },
}

MEI = {"firstName": "Mei", "lastName": "Chen", "email": "mei@example.com", "dateOfBirth": "1980-02-03",
       "nationality": "gb", "share": 60}  # fmt: skip
OLA = {"firstName": "Ola", "lastName": "Berg", "email": "ola@example.com", "nationality": "NO", "share": 40}


def write(tmp_path, doc: dict, name: str | None = None):
    path = tmp_path / f"{name or doc['name']}.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def workflows(cli, db, tmp_path):
    cli("workflows", "add", write(tmp_path, KYC_EMAIL))
    cli("workflows", "add", write(tmp_path, KYB_KYC))


def new_parent(cli, ubos: list | None, *, workflow: str = "kyb_kyc") -> str:
    data = {} if ubos is None else {"ubos": ubos}
    return cli("create", "-w", workflow, "--subject-name", "Acme Ltd", "--data", json.dumps(data)).stdout.strip()


def shown(cli, case: str) -> dict:
    return cli.json("show", case, "--json")


def blocks(cli, case: str) -> dict:
    return {b["name"]: b for b in cli.json("blocks", case, "--json")["blocks"]}


def events(cli, case: str, kind: str | None = None) -> list[dict]:
    found = cli.json("history", case, "--json")["events"]
    return [e for e in found if kind is None or e["kind"] == kind]


def conclude(cli, child: str) -> None:
    cli("event", child, "submitted")
    cli("act", child, "approve")


def test_entering_the_trigger_status_starts_a_child_per_element(cli, workflows):
    parent = new_parent(cli, [MEI, OLA])
    assert shown(cli, parent)["children"] == []  # not at creation: the trigger is collection_flow
    cli("act", parent, "start")
    case = shown(cli, parent)
    assert case["status"] == "pending_kyc"  # the children are there before the automatic route looks
    kids = {k["block"]: k for k in case["children"]}
    assert sorted(kids) == ["ubo_1", "ubo_2"]
    assert {k["workflow"] for k in kids.values()} == {"kyc_email"}
    mei = shown(cli, kids["ubo_1"]["id"])
    assert mei["status"] == "pending_verification" and mei["parent"] == parent
    who = mei["subject"]
    assert (who["name"], who["email"], who["dob"], who["country"]) == (
        "Mei Chen",
        "mei@example.com",
        "1980-02-03",
        "GB",
    )
    assert mei["data"] == MEI
    assert shown(cli, kids["ubo_2"]["id"])["subject"]["name"] == "Ola Berg"
    found = blocks(cli, parent)
    assert found["ubo_1"]["kind"] == "kyc" and found["ubo_1"]["status"] == "pending_id_verification"
    assert found["ubo_2"]["data"] == OLA
    started = events(cli, parent, "children.for_each")
    assert len(started) == 1 and started[0]["data"]["started"] == ["ubo_1", "ubo_2"]
    assert cli("db", "check").exit_code == 0


def test_entering_again_starts_only_elements_without_a_block(cli, workflows):
    parent = new_parent(cli, [MEI, OLA])
    cli("act", parent, "start")
    first = {k["block"]: k["id"] for k in shown(cli, parent)["children"]}
    for child in first.values():
        conclude(cli, child)
    assert shown(cli, parent)["status"] == "manual_review"
    cli("act", parent, "revise")  # back into collection_flow with the same two UBOs
    again = {k["block"]: k["id"] for k in shown(cli, parent)["children"]}
    assert again == first
    last = events(cli, parent, "children.for_each")[-1]["data"]
    assert last["started"] == [] and last["kept"] == ["ubo_1", "ubo_2"]
    # A third UBO added to the data gets its child the next time, and only it.
    kai = {**OLA, "firstName": "Kai", "email": "kai@example.com"}
    cli("block", parent, "data", "set", "ubos=" + json.dumps([MEI, OLA, kai]))
    cli("act", parent, "revise")
    kids = {k["block"]: k for k in shown(cli, parent)["children"]}
    assert sorted(kids) == ["ubo_1", "ubo_2", "ubo_3"]
    assert shown(cli, kids["ubo_3"]["id"])["subject"]["name"] == "Kai Berg"
    assert shown(cli, parent)["status"] == "pending_kyc"


def test_no_elements_start_nothing_and_a_when_route_sends_the_parent_on(cli, workflows):
    for ubos in (None, []):
        parent = new_parent(cli, ubos)
        cli("act", parent, "start")
        case = shown(cli, parent)
        assert case["status"] == "manual_review" and case["children"] == []
        assert events(cli, parent, "children.for_each")[0]["data"]["started"] == []
    assert cli.json("list", "--json")[0]["id"] == "C-1"
    assert len(cli.json("list", "--json")) == 2  # no child case was made


def test_a_concluded_child_maps_its_result_into_the_parents_block(cli, workflows):
    parent = new_parent(cli, [MEI, OLA])
    cli("act", parent, "start")
    kids = {k["block"]: k["id"] for k in shown(cli, parent)["children"]}
    conclude(cli, kids["ubo_1"])
    ubo_1 = blocks(cli, parent)["ubo_1"]
    assert ubo_1["status"] is None  # back for review, as before
    assert ubo_1["data"] == {**MEI, "decision": "approved", "status": "approved", "data": MEI}
    assert blocks(cli, parent)["ubo_2"]["data"] == OLA  # its child is still open
    mapped = events(cli, parent, "child.result")
    assert len(mapped) == 1
    assert mapped[0]["data"]["child"] == kids["ubo_1"] and mapped[0]["data"]["block"] == "ubo_1"
    assert mapped[0]["data"]["mapped"] == ["data", "decision", "status"]
    assert kids["ubo_1"] in cli("history", parent).stdout
    assert shown(cli, parent)["status"] == "pending_kyc"  # ubo_2 still pending
    cli("event", kids["ubo_2"], "submitted")
    cli("act", kids["ubo_2"], "reject", "--reason", "document forged")
    assert blocks(cli, parent)["ubo_2"]["data"]["decision"] == "rejected"
    assert shown(cli, parent)["status"] == "manual_review"  # the parent advanced


def test_the_parent_decided_first_withdraws_its_children_and_maps_nothing(cli, workflows):
    parent = new_parent(cli, [MEI])
    cli("act", parent, "start")
    child = shown(cli, parent)["children"][0]["id"]
    cli("act", parent, "reject", "--reason", "fraud")
    assert shown(cli, child)["status"] == "withdrawn"
    assert events(cli, parent, "child.result") == []
    assert blocks(cli, parent)["ubo_1"]["data"] == MEI


@pytest.mark.parametrize(
    "bad, message",
    [
        ({**OLA, "email": "not-an-email"}, "element 2 of data.ubos ([1]): subject_email: 'not-an-email'"),
        ({"share": 10}, "element 2 of data.ubos ([1]): subject name: 'join(' ', [firstName, lastName])' fails"),
        ("Ola Berg", "element 2 of data.ubos ([1]): data: '@' gives a string, not an object"),
        ({**OLA, "email": 7}, "element 2 of data.ubos ([1]): subject email: 'email' gives a number, not a string"),
        ({**OLA, "nationality": "Narnia"}, "element 2 of data.ubos ([1]): country: 'NARNIA'"),
    ],
)
def test_a_bad_element_refuses_the_change_and_writes_nothing(cli, workflows, db, bad, message):
    parent = new_parent(cli, [MEI, bad])
    before = snapshot(db)
    r = cli("act", parent, "start", expect=6)
    assert message in r.stderr
    assert snapshot(db) == before
    assert shown(cli, parent)["status"] == "draft"


def test_an_element_without_a_name_email_or_ref_is_refused(cli, db, tmp_path):
    doc = copy.deepcopy(KYB_KYC)
    del doc["children"]["for_each"]["subject"]  # the default: the element's name, email, dob, country
    cli("workflows", "add", write(tmp_path, KYC_EMAIL))
    cli("workflows", "add", write(tmp_path, doc))
    parent = new_parent(cli, [{"name": "Mei Chen", "email": "mei@example.com"}, {"country": "GB", "share": 10}])
    before = snapshot(db)
    r = cli("act", parent, "start", expect=6)
    assert "element 2 of data.ubos ([1]): no subject: the element gives no name, email or ref" in r.stderr
    assert snapshot(db) == before


def test_items_that_are_not_an_array_are_refused(cli, workflows, db):
    parent = new_parent(cli, None)
    cli("block", parent, "data", "set", "ubos=several")
    before = snapshot(db)
    r = cli("act", parent, "start", expect=6)
    assert "children.for_each.items: 'data.ubos' gives a string, not an array" in r.stderr
    assert snapshot(db) == before


def test_a_missing_child_workflow_is_not_found(cli, db, tmp_path):
    cli("workflows", "add", write(tmp_path, KYB_KYC))  # kyc_email was never added
    parent = new_parent(cli, [MEI])
    before = snapshot(db)
    r = cli("act", parent, "start", expect=3)
    assert "the child workflow 'kyc_email' is not known" in r.stderr and "casectl workflows add" in r.stderr
    assert snapshot(db) == before
    empty = new_parent(cli, [])  # no element needs it: nothing to refuse
    cli("act", empty, "start")
    assert shown(cli, empty)["status"] == "manual_review"


def test_without_on_children_start_at_creation_and_names_can_come_from_the_element(cli, db, tmp_path):
    doc = copy.deepcopy(KYB_KYC)
    doc["name"] = "kyb_at_once"
    del doc["children"]["for_each"]["on"]
    doc["children"]["for_each"]["block"] = "join('_', ['ubo', firstName])"
    cli("workflows", "add", write(tmp_path, KYC_EMAIL))
    cli("workflows", "add", write(tmp_path, doc))
    parent = new_parent(cli, [MEI, OLA], workflow="kyb_at_once")
    assert sorted(k["block"] for k in shown(cli, parent)["children"]) == ["ubo_Mei", "ubo_Ola"]
    cli("act", parent, "start")  # entering collection_flow is no trigger for this one
    assert len(shown(cli, parent)["children"]) == 2


def test_two_elements_with_one_block_name_are_refused(cli, db, tmp_path):
    doc = copy.deepcopy(KYB_KYC)
    doc["children"]["for_each"]["block"] = "join('_', ['ubo', lastName])"
    cli("workflows", "add", write(tmp_path, KYC_EMAIL))
    cli("workflows", "add", write(tmp_path, doc))
    parent = new_parent(cli, [OLA, {**OLA, "firstName": "Kai"}])
    before = snapshot(db)
    r = cli("act", parent, "start", expect=6)
    assert "element 2 of data.ubos ([1]): block ubo_Berg is already another element's" in r.stderr
    assert snapshot(db) == before


def test_lint_reports_for_each_problems_with_json_paths(cli, db, tmp_path):
    doc = copy.deepcopy(KYB_KYC)
    doc["children"]["for_each"].update(
        items="data.ubos[",
        on=["collection_flow", "nowhere", "approved"],
        block="ubo {index}",
        result="{decision: ",
    )
    doc["children"]["for_each"]["subject"]["email"] = "emails[?"
    r = cli("workflows", "validate", write(tmp_path, doc), expect=6)
    assert "$.children.for_each.items: 'data.ubos[': not a valid JMESPath expression" in r.stderr
    assert "$.children.for_each.on[1]: unknown status 'nowhere'" in r.stderr
    assert "$.children.for_each.on[2]: 'approved' is final" in r.stderr
    assert "$.children.for_each.block: 'ubo {index}' is not a block name template" in r.stderr
    assert "$.children.for_each.subject.email: 'emails[?'" in r.stderr
    assert "$.children.for_each.result: '{decision: '" in r.stderr
    assert "on[0]" not in r.stderr  # collection_flow is a status, and open
    doc["children"]["for_each"] = {"items": "data.ubos", "block": "ubo_{n}"}
    r = cli("workflows", "validate", write(tmp_path, doc), expect=6)
    assert "$.children.for_each.block: 'ubo_{n}': the only placeholder is {index}" in r.stderr
    doc["children"]["for_each"] = {"items": "data.ubos", "subject": {"phone": "phone"}}
    r = cli("workflows", "validate", write(tmp_path, doc), expect=6)
    assert "$.children.for_each.subject" in r.stderr and "'phone' was unexpected" in r.stderr


def test_the_definition_round_trips_and_shows(cli, workflows, tmp_path):
    wf = rules.workflow_from_dict(KYB_KYC)
    assert rules.workflow_from_dict(rules.workflow_to_dict(wf)) == wf
    assert rules.workflow_to_dict(wf)["children"] == {
        "for_each": {k: v for k, v in KYB_KYC["children"]["for_each"].items() if k not in ("block", "data")}
    }
    assert rules.lint(wf) == []
    out = cli.json("workflows", "validate", write(tmp_path, KYB_KYC), "--json")
    assert out["valid"] is True
    shown_wf = cli.json("workflows", "show", "kyb_kyc", "--json")["workflow"]
    assert shown_wf["children"]["for_each"]["items"] == "data.ubos"
    assert cli("workflows", "show", "kyb_kyc").exit_code == 0


def test_the_followers_case_document_is_the_kernels(cli, workflows, db):
    from casectl.services import children, lifecycle
    from casectl.store.db import connect

    parent = new_parent(cli, [MEI, OLA])
    cli("act", parent, "start")
    conclude(cli, shown(cli, parent)["children"][0]["id"])
    conn = connect(db)
    try:
        for n in (1, 2, 3):
            case = lifecycle.get(conn, n)
            assert children.case_document(conn, case) == lifecycle.case_document(conn, case)
    finally:
        conn.close()


def test_a_case_created_in_a_trigger_status_starts_its_children(cli, db, tmp_path):
    doc = copy.deepcopy(KYB_KYC)
    doc["create_statuses"] = ["draft", "collection_flow"]
    cli("workflows", "add", write(tmp_path, KYC_EMAIL))
    cli("workflows", "add", write(tmp_path, doc))
    data = json.dumps({"ubos": [MEI]})
    parent = cli("create", "-w", "kyb_kyc", "--status", "collection_flow", "--data", data).stdout.strip()
    case = shown(cli, parent)
    assert [k["block"] for k in case["children"]] == ["ubo_1"] and case["status"] == "pending_kyc"


def test_a_block_name_taken_by_another_kind_is_refused(cli, workflows, db):
    data = json.dumps({"ubos": [MEI]})
    parent = cli("create", "-w", "kyb_kyc", "--data", data, "--block", "document:ubo_1").stdout.strip()
    before = snapshot(db)
    r = cli("act", parent, "start", expect=6)
    assert "block ubo_1 already exists and is a document block, not a kyc one" in r.stderr
    assert snapshot(db) == before
