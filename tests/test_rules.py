"""The rules module: seed 000's table cell by cell, guards, routes, lint."""

from __future__ import annotations

import pytest
from casectl import rules
from casectl.rules import BUILTIN, SYSTEM, BlockState, CaseState, check, lint
from casectl.rules.builtin import KYB, SCREENING, SIMPLE

# Seed 000, "Case statuses and their available actions", literally.
SEED_TABLE = {
    "collection_flow": set(),
    "pending_process": {"reject", "request_reuploads"},
    "pending_id_verification": {"reject", "request_reuploads"},
    "manual_review": {"approve", "reject", "request_reuploads"},
    "revisions": {"reject"},
    "approved": set(),
    "rejected": set(),
}
AGENT_ACTIONS = ["approve", "reject", "request_reuploads"]
MARKED = (BlockState("passport", "document", rules.model.REUPLOAD_NEEDED),)


@pytest.mark.parametrize("status", list(SEED_TABLE))
@pytest.mark.parametrize("action", AGENT_ACTIONS)
def test_kyb_table_cell(status, action):
    # A document marked for re-upload, so request_reuploads' own guard holds;
    # approve then needs the marks cleared, so judge it without them.
    blocks = MARKED if action == "request_reuploads" else ()
    verdict = check(KYB, CaseState(status, blocks=blocks), action)
    assert verdict.allowed == (action in SEED_TABLE[status]), verdict


def test_kyb_static_table_matches_seed():
    assert {s.name: {a.name for a in KYB.actions_from(s.name)} for s in KYB.statuses} == SEED_TABLE
    assert KYB.final_statuses == ("approved", "rejected")


def test_refusal_says_why():
    v = check(KYB, CaseState("revisions"), "approve")
    assert not v.allowed and "revisions" in v.reason
    v = check(KYB, CaseState("manual_review"), "request_reuploads")
    assert not v.allowed and "reupload_needed" in v.reason
    v = check(KYB, CaseState("manual_review"), "collection_completed")
    assert not v.allowed and "system event" in v.reason
    v = check(KYB, CaseState("manual_review"), "fly")
    assert not v.allowed and "no action 'fly'" in v.reason


@pytest.mark.parametrize(
    "blocks,activities,expected",
    [
        ((), (), "manual_review"),
        ((BlockState("ubo1", "kyc", rules.model.PENDING_ID_VERIFICATION),), (), "pending_id_verification"),
        ((BlockState("ubo1", "kyc", None, child_final=False),), (), "pending_id_verification"),
        ((BlockState("ubo1", "kyc", None, child_final=True),), (), "manual_review"),
        ((), (rules.ActivityState("A-1", "registry", "in_progress"),), "pending_process"),
    ],
)
def test_collection_completed_routes(blocks, activities, expected):
    v = check(KYB, CaseState("collection_flow", blocks=blocks, activities=activities), "collection_completed", SYSTEM)
    assert v.allowed and v.target == expected


def test_kyc_completed_needs_every_kyc_done():
    pending = (BlockState("ubo1", "kyc", None, child_final=True), BlockState("ubo2", "kyc", None, child_final=False))
    v = check(KYB, CaseState("pending_id_verification", blocks=pending), "kyc_completed", SYSTEM)
    assert not v.allowed and "ubo2" in v.reason


def test_screening_complete_names_missing_activities():
    acts = (
        rules.ActivityState("A-1", "basic_details", "complete", "reviewed"),
        rules.ActivityState("A-2", "dbs_enhanced", "in_progress"),
        rules.ActivityState("A-3", "document_upload", "complete"),
    )
    v = check(SCREENING, CaseState("pending_case_decision", activities=acts), "complete")
    assert not v.allowed
    assert "A-2 (dbs_enhanced: in_progress)" in v.reason and "A-3 (document_upload)" in v.reason


def test_four_eyes():
    wf = rules.workflow_from_dict({**rules.workflow_to_dict(SIMPLE), "four_eyes": ["approve"]})
    state = CaseState("open", actor="ann", created_by="ann", last_editor="bob")
    v = check(wf, state, "approve")
    assert not v.allowed and "four-eyes" in v.reason and "created the case" in v.reason
    assert check(wf, CaseState("open", actor="cy", created_by="ann", last_editor="bob"), "approve").allowed


def test_set_status_simple():
    assert rules.check_set_status(SIMPLE, CaseState("open"), "pending").allowed
    assert not rules.check_set_status(SIMPLE, CaseState("approved"), "open").allowed
    assert not rules.check_set_status(KYB, CaseState("manual_review"), "approved").allowed
    assert "no status" in rules.check_set_status(SIMPLE, CaseState("open"), "nope").reason


def test_aliases():
    assert SIMPLE.action("reject").name == "decline"
    assert SCREENING.action("reject").name == "cancel"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtins_round_trip_and_lint_clean(name):
    wf = BUILTIN[name]
    assert rules.workflow_from_dict(rules.workflow_to_dict(wf)) == wf
    assert lint(wf) == []


def test_lint_finds_problems():
    doc = {
        "name": "bad",
        "initial": "nowhere",
        "statuses": [{"name": "a"}, {"name": "b", "final": True}, {"name": "island"}],
        "actions": [{"name": "go", "from": ["b"], "to": "ghost"}],
    }
    messages = [m for _, m in lint(rules.workflow_from_dict(doc))]
    text = "\n".join(messages)
    assert "no initial status" in text
    assert "final status 'b' has an outgoing action 'go'" in text
    assert "unknown status 'ghost'" in text


def test_lint_unreachable():
    doc = {
        "name": "x",
        "initial": "a",
        "statuses": [{"name": "a"}, {"name": "b", "final": True}, {"name": "island"}],
        "actions": [{"name": "go", "from": ["a"], "to": "b"}],
    }
    assert ("$.statuses[2]", "status 'island' is unreachable from 'a'") in lint(rules.workflow_from_dict(doc))


def test_block_rules():
    assert not rules.block_action_check("registry_data", None, "set").allowed
    assert "read-only" in rules.block_action_check("enriched", None, "set").reason
    assert rules.block_action_check("document", None, "approve").target == "approved"
    assert rules.block_action_check("kyc", None, "reupload").target == "reupload_needed"
    assert not rules.block_action_check("user_data", None, "approve").allowed


def test_kyb_approve_needs_every_document_and_kyc_block_approved():
    blocks = (
        BlockState("passport", "document", "approved"),
        BlockState("ubo1", "kyc", None, child_final=True),
        BlockState("notes", "user_data", None),
    )
    v = check(KYB, CaseState("manual_review", blocks=blocks), "approve")
    assert not v.allowed and "ubo1 (awaiting review)" in v.reason and "passport" not in v.reason
    approved = blocks[:1] + (BlockState("ubo1", "kyc", "approved", child_final=True),) + blocks[2:]
    assert check(KYB, CaseState("manual_review", blocks=approved), "approve").allowed
