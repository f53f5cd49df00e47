"""What may happen to a block or an activity, beyond seed 000's block table.

Pure Python, like model.py: the services ask, these answer with a Verdict
whose reason says what is missing.
"""

from __future__ import annotations

from .model import (
    ACTIVITY_DONE_STATES,
    BLOCK_KINDS_BY_NAME,
    PENDING_ID_VERIFICATION,
    PENDING_REUPLOAD,
    RESERVED_BLOCK_NAMES,
    REUPLOAD_NEEDED,
    Verdict,
    Workflow,
    block_action_check,
)

# Names that the case's own data and registry data answer to in `casectl blocks`.
DATA_BLOCK = "data"
REGISTRY_BLOCK = "registry"
RESERVED_NAMES = RESERVED_BLOCK_NAMES  # (DATA_BLOCK, REGISTRY_BLOCK, "add"), kept beside the block name rule

# A KYC child case decided like this cannot be approved on its parent.
NEGATIVE_DECISIONS = ("rejected", "declined", "cancelled")

# Activity states in which a decision can be taken (seed 002: decide once results are in).
DECIDABLE_STATES = ("pending_activity_decision", "complete")


def case_open(wf: Workflow, status: str, what: str) -> Verdict:
    """Nothing inside a case changes once it is final."""
    if wf.is_final(status):
        return Verdict(what, False, reasons=(f"the case is {status} (final); nothing in it can change any more",))
    return Verdict(what, True)


def has_reupload_flow(wf: Workflow) -> bool:
    return any(frm == REUPLOAD_NEEDED for a in wf.actions for frm, _ in a.block_moves)


def block_check(
    wf: Workflow,
    kind: str,
    status: str | None,
    action: str,
    *,
    child: str | None = None,
    child_status: str | None = None,
    child_final: bool | None = None,
    child_decision: str | None = None,
    has_document: bool | None = None,
) -> Verdict:
    """May a block take `action` (set, approve, reupload, attach, received) now?"""
    if action == "attach":
        verdict = block_action_check(kind, status, "set")
        return Verdict("attach", verdict.allowed, reasons=verdict.reasons)
    if action == "received":
        if kind != "document":
            return Verdict(
                action,
                False,
                reasons=(
                    f"only document blocks receive re-uploaded files; a {kind} block's re-upload "
                    + ("is its new KYC case" if kind == "kyc" else "is not a file"),
                ),
            )
        if status != PENDING_REUPLOAD:
            return Verdict(
                action,
                False,
                reasons=(
                    f"the block is {status or 'awaiting review'}, not pending_reupload; mark it with `block ... reupload` "
                    "and send the request with `act ... request_reuploads` first",
                ),
            )
        return Verdict(action, True, target=None)
    verdict = block_action_check(kind, status, action)
    if not verdict.allowed or action == "set":
        return verdict
    if kind == "kyc" and child_final is False:
        return Verdict(
            action,
            False,
            reasons=(f"the KYC case {child} is still {child_status}; {action} the block once it concludes",),
        )
    if kind == "kyc" and action == "approve" and child_decision in NEGATIVE_DECISIONS:
        return Verdict(
            action,
            False,
            reasons=(
                f"the KYC case {child} was {child_decision}; start a new KYC flow with `reupload` or reject the case",
            ),
        )
    if action == "approve" and BLOCK_KINDS_BY_NAME[kind].needs_document and has_document is False:
        return Verdict(
            action, False, reasons=("the block holds no document to approve; attach one first (`casectl attach`)",)
        )
    if action == "approve" and status in (PENDING_ID_VERIFICATION, PENDING_REUPLOAD):
        return Verdict(action, False, reasons=(f"the block is {status}: nothing new has arrived to approve yet",))
    if action == "reupload" and not has_reupload_flow(wf):
        return Verdict(
            action,
            False,
            reasons=(f"workflow {wf.name} has no re-upload flow (no action moves {REUPLOAD_NEEDED} blocks)",),
        )
    return verdict


def valid_kind(wf: Workflow, kind: str) -> str | None:
    """None when the workflow has blocks of `kind`, else why not."""
    if kind not in BLOCK_KINDS_BY_NAME:
        return f"unknown block kind '{kind}' (kinds: {', '.join(BLOCK_KINDS_BY_NAME)})"
    if kind not in wf.block_kinds:
        return f"workflow {wf.name} has no {kind} blocks (its kinds: {', '.join(wf.block_kinds)})"
    return None


def activity_state_check(wf: Workflow, current: str, to: str) -> Verdict:
    if to not in wf.activity_states:
        return Verdict(
            "state", False, reasons=(f"'{to}' is not an activity state (states: {', '.join(wf.activity_states)})",)
        )
    if current in ACTIVITY_DONE_STATES:
        return Verdict("state", False, reasons=(f"the activity is {current}, which is final; add a new one instead",))
    return Verdict("state", True, target=to)


def activity_decide_check(wf: Workflow, state: str, decision: str) -> Verdict:
    if decision not in wf.decisions:
        return Verdict(
            "decide",
            False,
            reasons=(f"'{decision}' is not a decision of workflow {wf.name} (decisions: {', '.join(wf.decisions)})",),
        )
    if state not in DECIDABLE_STATES:
        return Verdict(
            "decide",
            False,
            reasons=(
                f"the activity is {state}; decide it once its results are in (state {' or '.join(DECIDABLE_STATES)})",
            ),
        )
    return Verdict("decide", True, target="complete")
