"""Blocks: the five kinds and their edit rights, approve / ask to re-upload, adding
blocks at creation and later, four-eyes, and the refusals (exit code, message,
database unchanged)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from casectl.rules import BUILTIN, workflow_to_dict

from conftest import LOGIN, snapshot


def login_of(db) -> str:
    """The login history records: the OS account on SQLite, the role the server authenticated on PostgreSQL."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        return urlsplit(db).username or ""
    return LOGIN


def blocks_by_name(cli, case: str) -> dict:
    return {b["name"]: b for b in cli.json("blocks", case, "--json")["blocks"]}


@pytest.fixture
def kyb_case(cli, db, tmp_path):
    info = tmp_path / "company.json"
    info.write_text(json.dumps({"legal_name": "Acme Ltd", "employees": 12}))
    out = cli(
        "create",
        "-w",
        "kyb",
        "--subject-email",
        "acme@example.com",
        "--subject-name",
        "Acme Ltd",
        "--block",
        "document:passport",
        "--block",
        f"user_data:company=@{info}",
        "--block",
        'registry_data:companies_house={"number": "0123"}',
        "--block",
        "enriched:risk_score",
    )
    return out.stdout.strip()


def test_blocks_lists_kinds_statuses_and_summaries(cli, kyb_case):
    doc = cli.json("blocks", kyb_case, "--json")
    assert doc["case"] == kyb_case and doc["status"] == "collection_flow"
    blocks = {b["name"]: b for b in doc["blocks"]}
    assert list(blocks) == ["data", "registry", "passport", "company", "companies_house", "risk_score"]
    assert blocks["passport"]["kind"] == "document" and blocks["passport"]["status"] is None
    assert blocks["passport"]["status_label"] == "awaiting review"
    assert blocks["passport"]["summary"] == "no document yet"
    assert blocks["company"]["data"] == {"legal_name": "Acme Ltd", "employees": 12}
    assert blocks["company"]["summary"] == "2 fields: employees, legal_name"
    assert blocks["companies_house"]["editable"] is False
    assert blocks["passport"]["actions"] == ["approve", "reupload"]
    table = cli("blocks", kyb_case).stdout.splitlines()
    assert table[2].split("\t")[:3] == ["passport", "document", "awaiting review"]


def test_set_edits_a_writable_block_and_records_the_editor(cli, db, kyb_case):
    cli("block", kyb_case, "company", "set", "employees=40", "address.city=London", "vat=GB123", "--actor", "bob")
    data = blocks_by_name(cli, kyb_case)["company"]["data"]
    assert data == {"legal_name": "Acme Ltd", "employees": 40, "address": {"city": "London"}, "vat": "GB123"}
    case = cli.json("show", kyb_case, "--json")
    assert case["last_editor"] == "bob"
    hist = cli("history", kyb_case).stdout
    assert f"bob (login {login_of(db)})\tblock.set (company: employees=40, address.city=London, vat=GB123)" in hist


def test_set_on_the_case_data_block_updates_case_data(cli, kyb_case):
    cli("block", kyb_case, "data", "set", "segment=retail", "limit=2500")
    case = cli.json("show", kyb_case, "--json")
    assert case["data"] == {"segment": "retail", "limit": 2500}
    listed = cli("list", "--where", "segment=retail", "--ids").stdout.split()
    assert listed == [kyb_case]


@pytest.mark.parametrize(
    "block, kind", [("companies_house", "registry_data"), ("risk_score", "enriched"), ("registry", "registry_data")]
)
def test_set_on_a_read_only_block_is_refused(cli, kyb_case, db, block, kind):
    before = snapshot(db)
    r = cli("block", kyb_case, block, "set", "number=999", expect=4)
    assert f"{kind} blocks are read-only for agents" in r.stderr
    assert f"cannot edit block {block} on case {kyb_case}" in r.stderr
    assert snapshot(db) == before


def test_bad_assignment_is_invalid_input(cli, kyb_case, db):
    before = snapshot(db)
    r = cli("block", kyb_case, "company", "set", "employees", expect=6)
    assert "'employees' is not KEY=VALUE" in r.stderr
    r = cli("block", kyb_case, "company", "set", "a..b=1", expect=6)
    assert snapshot(db) == before


def attach_scan(cli, case, tmp_path, block="passport"):
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.4 a passport scan")
    cli("attach", case, block, str(scan))


def test_approving_a_document_block_without_a_document_is_refused(cli, kyb_case, db):
    before = snapshot(db)
    r = cli("block", kyb_case, "passport", "approve", expect=4)
    assert "holds no document to approve" in r.stderr and "casectl attach" in r.stderr
    assert snapshot(db) == before


def test_approve_is_recorded_on_the_block_and_the_case_while_undecided(cli, kyb_case, tmp_path):
    attach_scan(cli, kyb_case, tmp_path)
    cli("block", kyb_case, "passport", "approve", "--reason", "clear scan", "--actor", "ann")
    passport = blocks_by_name(cli, kyb_case)["passport"]
    assert passport["status"] == "approved" and passport["decided_by"] == "ann" and passport["decided_at"]
    # A second agent sees it, though the case itself has no decision.
    case = cli.json("show", kyb_case, "--json", "--actor", "bob")
    assert case["decision"] is None and case["status"] == "collection_flow"
    assert [b["status"] for b in case["blocks"] if b["name"] == "passport"] == ["approved"]
    events = cli.json("history", kyb_case, "--json")["events"]
    approve = [e for e in events if e["kind"] == "block.approve"]
    assert len(approve) == 1 and approve[0]["actor"] == "ann" and approve[0]["reason"] == "clear scan"
    assert approve[0]["data"]["block"] == "passport" and approve[0]["data"]["to"] == "approved"
    r = cli("block", kyb_case, "passport", "approve", expect=4)
    assert "already approved" in r.stderr


def test_block_actions_follow_the_kind(cli, kyb_case, db):
    before = snapshot(db)
    r = cli("block", kyb_case, "company", "approve", expect=4)
    assert "user_data blocks have no action 'approve' (block actions: none)" in r.stderr
    r = cli("block", kyb_case, "companies_house", "reupload", "--reason", "x", expect=4)
    assert "registry_data blocks have no action 'reupload'" in r.stderr
    assert snapshot(db) == before


def test_reupload_marks_and_counts_on_the_action(cli, kyb_case):
    cli("block", kyb_case, "add", "document", "bank_statement")
    cli("event", kyb_case, "collection_completed")
    r = cli("block", kyb_case, "passport", "reupload", "--reason", "blurry")
    assert "request_reuploads" in r.stdout
    cli("block", kyb_case, "bank_statement", "reupload", "--reason", "older than 3 months")
    assert blocks_by_name(cli, kyb_case)["passport"]["status"] == "reupload_needed"
    show = cli("show", kyb_case).stdout
    assert "request_reuploads (2)" in show
    r = cli("block", kyb_case, "passport", "reupload", "--reason", "again", expect=4)
    assert "already reupload_needed" in r.stderr


def test_reupload_needs_a_reason(cli, kyb_case, db):
    before = snapshot(db)
    r = cli("block", kyb_case, "passport", "reupload", expect=2)
    assert "--reason" in r.stderr
    r = cli("block", kyb_case, "passport", "reupload", "--reason", "  ", expect=6)
    assert snapshot(db) == before


def test_add_block_later_and_its_refusals(cli, kyb_case, db):
    r = cli("block", kyb_case, "add", "document", "utility_bill")
    assert "document block utility_bill added" in r.stdout
    assert blocks_by_name(cli, kyb_case)["utility_bill"]["kind"] == "document"
    before = snapshot(db)
    assert "already used" in cli("block", kyb_case, "add", "document", "utility_bill", expect=6).stderr
    assert "reserved" in cli("block", kyb_case, "add", "user_data", "data", expect=6).stderr
    assert "unknown block kind 'scan'" in cli("block", kyb_case, "add", "scan", "x", expect=6).stderr
    assert "use letters, digits" in cli("block", kyb_case, "add", "document", "bad name", expect=6).stderr
    assert "not valid JSON" in cli("block", kyb_case, "add", "user_data", "x", "--data", "{", expect=6).stderr
    assert snapshot(db) == before


def test_workflow_decides_which_kinds_exist(cli, db):
    before = snapshot(db)
    r = cli("create", "-w", "simple", "--subject-email", "s@example.com", "--block", "kyc:ubo", expect=6)
    assert "workflow simple has no kyc blocks" in r.stderr
    assert snapshot(db) == before
    cid = cli("create", "-w", "simple", "--block", "document:id_card").stdout.strip()
    r = cli("block", cid, "id_card", "reupload", "--reason", "blurry", expect=4)
    assert "workflow simple has no re-upload flow" in r.stderr


def test_block_usage_errors_list_the_verbs(cli, kyb_case, db):
    before = snapshot(db)
    for args in (
        [kyb_case],
        [kyb_case, "passport"],
        [kyb_case, "passport", "frobnicate"],
        [kyb_case, "add", "document"],
        [kyb_case, "passport", "received"],
        [kyb_case, "passport", "approve", "extra"],
    ):
        r = cli("block", *args, expect=2)
        assert "verbs: add, set, approve, reupload, received" in r.stderr, args
        assert "casectl block ID BLOCK set KEY=VALUE..." in r.stderr
    assert snapshot(db) == before


def test_not_found(cli, kyb_case):
    r = cli("block", kyb_case, "nope", "approve", expect=3)
    assert "has no block 'nope'" in r.stderr and "passport" in r.stderr
    assert "no case 'C-99'" in cli("block", "C-99", "passport", "approve", expect=3).stderr
    assert cli("blocks", "C-99", expect=3).exit_code == 3


def test_nothing_changes_in_a_final_case(cli, kyb_case, db):
    cli("event", kyb_case, "collection_completed")
    cli("reject", kyb_case, "--reason", "fraud")
    before = snapshot(db)
    r = cli("block", kyb_case, "passport", "approve", expect=4)
    assert "the case is rejected (final)" in r.stderr
    cli("block", kyb_case, "company", "set", "a=1", expect=4)
    cli("block", kyb_case, "add", "document", "late", expect=4)
    assert snapshot(db) == before


def test_create_block_specs_are_validated(cli, db, tmp_path):
    before = snapshot(db)
    r = cli("create", "-w", "kyb", "--block", "document", expect=2)
    assert "KIND:NAME" in r.stderr
    r = cli("create", "-w", "kyb", "--block", "kyc:ubo1=@" + str(tmp_path / "missing.json"), expect=6)
    assert "cannot read" in r.stderr
    bad = tmp_path / "ubo.json"
    bad.write_text(json.dumps({"name": "Jo", "email": "not-an-email"}))
    r = cli("create", "-w", "kyb", "--block", f"kyc:ubo1=@{bad}", expect=6)
    assert "kyc block ubo1: subject_email: 'not-an-email' is not an email address" in r.stderr
    assert snapshot(db) == before


# --- four-eyes -------------------------------------------------------------------


@pytest.fixture
def four_eyes_workflow(cli, db, tmp_path):
    d = workflow_to_dict(BUILTIN["kyb"])
    d.update(name="kyb_four_eyes", version=1, four_eyes=["approve"])
    path = tmp_path / "kyb_four_eyes.json"
    path.write_text(json.dumps(d))
    cli("workflows", "add", str(path))
    return "kyb_four_eyes"


def test_four_eyes_refuses_the_creator_and_the_last_editor(cli, db, four_eyes_workflow):
    cid = cli(
        "create",
        "-w",
        four_eyes_workflow,
        "--subject-email",
        "f@example.com",
        "--block",
        "user_data:company",
        "--actor",
        "ann",
    ).stdout.strip()
    cli("event", cid, "collection_completed")
    r = cli("approve", cid, "--actor", "ann", expect=4)
    assert "four-eyes rule: ann created the case, last edited its data; another agent must do this" in r.stderr
    assert "allowed now: reject" in r.stderr
    cli("block", cid, "company", "set", "name=Acme", "--actor", "bob")
    r = cli("approve", cid, "--actor", "bob", expect=4)
    assert "four-eyes rule: bob last edited its data" in r.stderr
    assert cli.json("show", cid, "--json")["status"] == "manual_review"
    out = cli.json("approve", cid, "--actor", "cy", "--json")
    assert out["to"] == "approved" and out["case"]["decision"] == "approved"


def test_without_four_eyes_the_creator_may_approve(cli, db):
    cid = cli("create", "-w", "kyb", "--actor", "ann").stdout.strip()
    cli("event", cid, "collection_completed")
    assert cli.json("approve", cid, "--actor", "ann", "--json")["to"] == "approved"


def test_options_that_do_not_fit_the_verb_are_usage_errors(cli, kyb_case, db):
    before = snapshot(db)
    assert (
        "--reason goes with approve and reupload"
        in cli("block", kyb_case, "company", "set", "a=1", "--reason", "x", expect=2).stderr
    )
    assert (
        "--data goes with `block ID add`"
        in cli("block", kyb_case, "company", "set", "a=1", "--data", "{}", expect=2).stderr
    )
    assert snapshot(db) == before


def test_blocks_by_id_and_formats(cli, kyb_case, tmp_path):
    attach_scan(cli, kyb_case, tmp_path)
    cli("block", kyb_case, "B-1", "approve")
    rows = [__import__("json").loads(x) for x in cli("blocks", kyb_case, "--format", "ndjson").stdout.splitlines()]
    assert [(r["name"], r["status"]) for r in rows if r["id"] == "B-1"] == [("passport", "approved")]
    csv_lines = cli("blocks", kyb_case, "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == "name,kind,status,summary,decided_by,decided_at,id"
    assert csv_lines[3].startswith('passport,document,approved,"scan.pdf, application/pdf, 24 B",tester,')
