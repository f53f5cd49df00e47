"""The two journeys issue 3 asks for, end to end through the CLI:

- kyb (seed 000): collection, two UBO child cases, one document rejected,
  re-uploaded and approved, the case approved;
- screening (seed 002): activities, results, decisions, completion.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlsplit

from conftest import LOGIN, raw_connect, snapshot


def login_of(db) -> str:
    """The login history records: the OS account on SQLite, the role the server authenticated on PostgreSQL."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        return urlsplit(db).username or ""
    return LOGIN


def outbox(db_path) -> list[dict]:
    conn = raw_connect(db_path)
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY id")]
    finally:
        conn.close()
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    return rows


def blocks(cli, case: str) -> dict:
    return {b["name"]: b for b in cli.json("blocks", case, "--json")["blocks"]}


def status(cli, case: str) -> str:
    return cli.json("show", case, "--json")["status"]


def test_kyb_journey(cli, db, tmp_path):
    ubo1 = tmp_path / "ubo1.json"
    ubo1.write_text(json.dumps({"name": "Jane Roe", "email": "jane@example.com", "country": "gb", "share": 60}))
    ubo2 = tmp_path / "ubo2.json"
    ubo2.write_text(json.dumps({"name": "Raj Patel", "email": "raj@example.com", "share": 40}))
    passport = tmp_path / "passport.pdf"
    passport.write_bytes(b"%PDF-1.7 blurry scan\x00\xff" * 100)
    articles = tmp_path / "articles.pdf"
    articles.write_bytes(b"%PDF-1.7 articles of association\n" * 50)

    # Collection: the company, its documents and two UBOs (each a child case on the kyc workflow).
    case = cli(
        "create",
        "-w",
        "kyb",
        "--ref",
        "ACME-1",
        "--subject-name",
        "Acme Ltd",
        "--subject-email",
        "ops@acme.example",
        "--entity-type",
        "company",
        "--country",
        "GB",
        "--block",
        "document:passport",
        "--block",
        "document:articles",
        "--block",
        f"kyc:ubo_jane=@{ubo1}",
        "--block",
        f"kyc:ubo_raj=@{ubo2}",
        "--block",
        'registry_data:companies_house={"number": "01234567", "status": "active"}',
        "--actor",
        "ann",
    ).stdout.strip()
    cli("attach", case, "passport", str(passport), "--actor", "ann")
    cli("attach", case, "articles", str(articles), "--actor", "ann")
    b = blocks(cli, case)
    jane, raj = b["ubo_jane"]["child"], b["ubo_raj"]["child"]
    assert b["ubo_jane"]["status"] == b["ubo_raj"]["status"] == "pending_id_verification"
    children = cli("list", "--parent", case, "--ids").stdout.split()
    assert children == [jane, raj]
    child = cli.json("show", jane, "--json")
    assert child["workflow"] == "kyc" and child["parent"] == case and child["origin"] == f"case:{case}"
    assert child["subject"]["email"] == "jane@example.com" and child["subject"]["country"] == "GB"
    show = cli.json("show", case, "--json")
    assert [c["id"] for c in show["children"]] == [jane, raj]
    assert [(m["target"], m["payload"]["template"]) for m in outbox(db)] == [
        ("jane@example.com", "kyc_flow"),
        ("raj@example.com", "kyc_flow"),
    ]

    # Collection completed while the UBOs' KYC is pending.
    cli("event", case, "collection_completed")
    assert status(cli, case) == "pending_id_verification"
    r = cli("approve", case, "--actor", "bob", expect=4)
    assert "not allowed in status pending_id_verification" in r.stderr and "allowed now: reject" in r.stderr
    r = cli("block", case, "ubo_jane", "approve", expect=4)
    assert f"the KYC case {jane} is still pending_verification" in r.stderr

    # The first UBO completes: the parent waits for the last one.
    cli("event", jane, "verification_submitted")
    cli("approve", jane, "--actor", "kim")
    assert status(cli, case) == "pending_id_verification"
    assert blocks(cli, case)["ubo_jane"]["status"] is None
    # The second one concludes: a system event moves the parent to manual review.
    cli("event", raj, "verification_passed")
    assert status(cli, case) == "manual_review"
    last = cli.json("history", case, "--json")["events"][-1]
    assert (last["kind"], last["action"], last["from"], last["to"]) == (
        "system",
        "kyc_completed",
        "pending_id_verification",
        "manual_review",
    )

    # Review: UBOs and articles approved, the passport rejected.
    cli("block", case, "ubo_jane", "approve", "--actor", "bob")
    cli("block", case, "ubo_raj", "approve", "--actor", "bob")
    cli("block", case, "articles", "approve", "--actor", "bob")
    cli("block", case, "passport", "reupload", "--reason", "the scan is blurry", "--actor", "bob")
    assert "request_reuploads (1)" in cli("show", case).stdout
    r = cli("approve", case, "--actor", "bob", expect=4)
    assert "re-uploads still pending: passport" in r.stderr

    # Ask for all re-uploads: block moves, case to revisions, the email queued in the same transaction.
    out = cli.json("act", case, "request_reuploads", "--actor", "bob", "--json")
    assert out["to"] == "revisions"
    assert out["changes"]["blocks"] == [{"block": "passport", "from": "reupload_needed", "to": "pending_reupload"}]
    assert blocks(cli, case)["passport"]["status"] == "pending_reupload"
    mail = outbox(db)[-1]
    assert mail["kind"] == "email" and mail["target"] == "ops@acme.example" and mail["status"] == "pending"
    assert mail["payload"]["template"] == "reupload_request" and mail["payload"]["case"] == case
    assert "passport: the scan is blurry" in mail["payload"]["text"]
    assert f"E-{mail['event_id']}" == out["event"]  # queued by the request_reuploads event itself
    assert mail["next_attempt_at"] == mail["created_at"]
    assert (
        f"bob (login {login_of(db)})\tmessage.queued (re-upload request to ops@acme.example: passport)"
        in cli("history", case).stdout
    )

    # The subject re-uploads; the block is back for review and the case returns to manual review.
    fixed = tmp_path / "passport-v2.pdf"
    fixed.write_bytes(b"%PDF-1.7 sharp scan\n" * 80)
    r = cli("block", case, "articles", "received", str(fixed), expect=4)
    assert "not pending_reupload" in r.stderr
    cli("block", case, "passport", "received", str(fixed), "--actor", "portal")
    assert blocks(cli, case)["passport"]["status"] is None
    assert status(cli, case) == "manual_review"
    exported = tmp_path / "exported.pdf"
    cli("doc", case, "passport", "-o", str(exported))
    assert hashlib.sha256(exported.read_bytes()).hexdigest() == hashlib.sha256(fixed.read_bytes()).hexdigest()

    # Approve the new document, then the case.
    cli("block", case, "passport", "approve", "--actor", "bob")
    out = cli.json("approve", case, "--actor", "bob", "--reason", "all verified", "--json")
    assert out["to"] == "approved" and out["case"]["decision"] == "approved"
    assert {n: x["status"] for n, x in blocks(cli, case).items() if x["actions"]} == {
        "passport": "approved",
        "articles": "approved",
        "ubo_jane": "approved",
        "ubo_raj": "approved",
    }

    kinds = [e["kind"] for e in cli.json("history", case, "--json")["events"]]
    for kind in (
        "created",
        "block.add",
        "document.attached",
        "block.kyc_concluded",
        "block.approve",
        "block.reupload",
        "message.queued",
        "block.received",
    ):
        assert kind in kinds, kind
    actions = [e["action"] for e in cli.json("history", case, "--json")["events"] if e["action"]]
    assert actions == ["collection_completed", "kyc_completed", "request_reuploads", "reupload_received", "approve"]


def test_kyb_kyc_reupload_starts_a_new_flow(cli, db, tmp_path):
    ubo = tmp_path / "ubo.json"
    ubo.write_text(json.dumps({"name": "Jo Park", "email": "jo@example.com"}))
    case = cli("create", "-w", "kyb", "--subject-email", "co@example.com", "--block", f"kyc:ubo=@{ubo}").stdout.strip()
    cli("event", case, "collection_completed")
    first = blocks(cli, case)["ubo"]["child"]
    cli("event", first, "verification_passed")
    assert status(cli, case) == "manual_review"
    cli("block", case, "ubo", "reupload", "--reason", "photo does not match")
    cli("act", case, "request_reuploads")
    assert status(cli, case) == "revisions"
    b = blocks(cli, case)["ubo"]
    second = b["child"]
    assert second != first and b["status"] == "pending_reupload" and b["child_status"] == "pending_verification"
    again = cli.json("show", second, "--json")
    assert again["data"]["reupload_of"] == first and again["subject"]["email"] == "jo@example.com"
    assert again["subject"]["id"] == cli.json("show", first, "--json")["subject"]["id"]
    mail = outbox(db)[-1]
    assert mail["target"] == "jo@example.com" and mail["payload"]["template"] == "kyc_flow"
    assert mail["payload"]["child"] == second
    # The new flow concludes: the block is back for review and the case returns to manual review.
    cli("event", second, "verification_submitted")
    cli("approve", second)
    assert status(cli, case) == "manual_review"
    assert [c["block"] for c in cli.json("show", case, "--json")["children"]] == [None, "ubo"]
    cli("block", case, "ubo", "approve")
    cli("approve", case)
    assert status(cli, case) == "approved"


def test_screening_journey(cli, db):
    case = cli(
        "create", "-w", "screening", "--subject-name", "Sam Poe", "--subject-email", "sam@example.com", "--actor", "ann"
    ).stdout.strip()
    ids = {a["type"]: a["id"] for a in cli.json("activities", case, "--json")["activities"]}
    assert list(ids) == ["basic_details", "dbs_enhanced", "document_upload"]
    cli("event", case, "initiated")
    cli("event", case, "subject_submitted")
    assert status(cli, case) == "in_progress"
    # An extra check handed to another team.
    cli("activity", case, "add", "reference_check", "--team", "hr", "--actor", "ann")

    r = cli("act", case, "complete", expect=4)
    assert "not allowed in status in_progress" in r.stderr

    cli("activity", case, "basic_details", "result", "verified=true", "--actor", "ann")
    cli("activity", case, "basic_details", "state", "complete", "--actor", "ann")
    cli("activity", case, "dbs_enhanced", "state", "in_progress", "--actor", "dbs-desk")
    cli("activity", case, "dbs_enhanced", "result", "certificate=001234567", "outcome=clear", "--actor", "dbs-desk")
    cli("activity", case, "dbs_enhanced", "state", "pending_activity_decision", "--actor", "dbs-desk")
    cli("activity", case, "document_upload", "state", "complete")
    assert status(cli, case) == "in_progress"  # the reference check is still open
    cli("activity", case, "reference_check", "state", "in_progress", "--actor", "hr-desk")
    cli("activity", case, "reference_check", "result", "referee=Former employer", "ok=true", "--actor", "hr-desk")
    out = cli.json("activity", case, "reference_check", "state", "complete", "--actor", "hr-desk", "--json")
    # dbs_enhanced still waits for its decision, so not every activity is complete yet.
    assert out["events"] == [] and status(cli, case) == "in_progress"

    # Decisions per activity, then the case.
    out = cli.json("activity", case, "dbs_enhanced", "decide", "reviewed", "--actor", "kim", "--json")
    assert out["state"] == "complete" and out["events"] == ["activities_completed"]
    assert status(cli, case) == "pending_case_decision"
    r = cli("act", case, "complete", "--actor", "kim", expect=4)
    assert (
        "activities without a decision: A-1 (basic_details), A-3 (document_upload), A-4 (reference_check)" in r.stderr
    )
    for t in ("basic_details", "document_upload", "reference_check"):
        cli("activity", case, t, "decide", "reviewed", "--actor", "kim")
    r = cli("act", case, "complete", "--decision", "approved", "--actor", "kim", expect=6)
    assert "not one of reviewed" in r.stderr
    out = cli.json("act", case, "complete", "--actor", "kim", "--json")
    assert out["to"] == "complete" and out["case"]["decision"] == "reviewed"

    page = json.loads(cli("activities", "--all", "--json").stdout)
    assert {(a["type"], a["state"], a["decision"]) for a in page} == {
        ("basic_details", "complete", "reviewed"),
        ("dbs_enhanced", "complete", "reviewed"),
        ("document_upload", "complete", "reviewed"),
        ("reference_check", "complete", "reviewed"),
    }
    assert next(a for a in page if a["type"] == "dbs_enhanced")["result"] == {
        "certificate": "001234567",
        "outcome": "clear",
    }
    history = cli("history", case).stdout
    assert "activities_completed: in_progress -> pending_case_decision (automatic)" in history
    assert (
        f"kim (login {login_of(db)})\tactivity.decide (A-2 dbs_enhanced decided reviewed; pending_activity_decision -> complete)"
        in history
    )
    assert f"kim (login {login_of(db)})\tcomplete: pending_case_decision -> complete" in history


def _kyb_with_ubo(cli, tmp_path, name="ubo"):
    ubo = tmp_path / f"{name}.json"
    ubo.write_text(json.dumps({"name": "Lee Chan", "email": "lee@example.com"}))
    case = cli(
        "create",
        "-w",
        "kyb",
        "--subject-email",
        "firm@example.com",
        "--block",
        "document:passport",
        "--block",
        f"kyc:{name}=@{ubo}",
    ).stdout.strip()
    cli("event", case, "collection_completed")
    return case, blocks(cli, case)[name]["child"]


def test_a_reupload_received_while_kyc_is_pending_waits_for_the_kyc(cli, db, tmp_path):
    case, child = _kyb_with_ubo(cli, tmp_path)
    assert status(cli, case) == "pending_id_verification"
    cli("block", case, "passport", "reupload", "--reason", "expired")
    cli("act", case, "request_reuploads")
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF new")
    cli("block", case, "passport", "received", str(scan))
    # Not manual review yet: approval would skip the UBO's KYC.
    assert status(cli, case) == "pending_id_verification"
    cli("event", child, "verification_passed")
    assert status(cli, case) == "manual_review"


def test_a_rejected_kyc_cannot_be_approved_on_the_parent(cli, db, tmp_path):
    case, child = _kyb_with_ubo(cli, tmp_path)
    cli("event", child, "verification_failed")
    assert status(cli, case) == "manual_review"
    r = cli("block", case, "ubo", "approve", expect=4)
    assert f"the KYC case {child} was rejected; start a new KYC flow with `reupload`" in r.stderr
    cli("block", case, "ubo", "reupload", "--reason", "verification failed")
    assert "request_reuploads (1)" in cli("show", case).stdout


def test_deciding_the_parent_withdraws_its_open_kyc_children(cli, db, tmp_path):
    case, child = _kyb_with_ubo(cli, tmp_path)
    cli("reject", case, "--reason", "sanctions hit")
    kid = cli.json("show", child, "--json")
    assert kid["status"] == "withdrawn" and kid["final"]
    assert kid["decision"] == "withdrawn" and kid["decided_at"] and kid["decided_by"]
    assert kid["decision_reason"] == f"parent case {case} is rejected"
    assert "(the case is already rejected)" in cli("history", case).stdout
    assert f"child case {child} withdrawn: this case is rejected" in cli("history", case).stdout
    # The withdrawn flow can no longer be approved, nor the parent's block.
    before = snapshot(db)
    r = cli("event", child, "verification_passed", expect=4)
    assert "not allowed in status withdrawn" in r.stderr
    cli("block", case, "ubo", "approve", expect=4)
    assert snapshot(db) == before
