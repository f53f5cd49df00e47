"""The built-in workflows, written as tables you can read against the seeds.

kyb       seed 000 (the case dashboard's statuses, actions and blocks)
simple    seed 003 (open / pending / approved / declined, update status)
screening seed 002 (background-check cases with activities and decisions)
kyc       seed 000's KYC block: a child case per UBO
"""

from __future__ import annotations

from .model import (
    PENDING_REUPLOAD,
    REUPLOAD_NEEDED,
    SYSTEM,
    Action,
    ActivityRequirement,
    Route,
    SetStatusRule,
    Status,
    Workflow,
)

KYB = Workflow(
    name="kyb",
    version=1,
    title="KYB onboarding",
    description="Business onboarding with documents, registry data and UBO KYC (seed 000).",
    initial="collection_flow",
    statuses=(
        Status(
            "collection_flow",
            "Collection flow",
            waiting=True,
            description="The user hasn't completed the collection flow.",
        ),
        Status(
            "pending_process",
            "Pending process",
            description="Collection completed; processes still running. Approval once they conclude.",
        ),
        Status(
            "pending_id_verification",
            "Pending ID verification",
            description="Collection completed; UBOs' KYC not done yet. Approval once it concludes.",
        ),
        Status("manual_review", "Manual review", description="All information collected; ready for manual review."),
        Status(
            "revisions",
            "Revisions",
            waiting=True,
            description="An agent asked the user or a UBO to re-upload documents or KYC.",
        ),
        Status("approved", "Approved", final=True, description="An agent reviewed and approved the case."),
        Status("rejected", "Rejected", final=True, description="An agent reviewed and permanently rejected the case."),
    ),
    actions=(
        Action(
            "approve",
            ("manual_review",),
            (Route("approved"),),
            label="Approve",
            guards=("no_reuploads_pending", "blocks_approved"),
            decision="approved",
        ),
        Action(
            "reject",
            ("pending_process", "pending_id_verification", "manual_review", "revisions"),
            (Route("rejected"),),
            label="Reject",
            reason_required=True,
            decision="rejected",
        ),
        Action(
            "request_reuploads",
            ("pending_process", "pending_id_verification", "manual_review"),
            (Route("revisions"),),
            label="Ask for all re-uploads",
            guards=("has_reupload_marks",),
            block_moves=((REUPLOAD_NEEDED, PENDING_REUPLOAD),),
            messages=("reupload_request",),
        ),
        Action(
            "collection_completed",
            ("collection_flow",),
            (
                Route("pending_process", when="processes_pending"),
                Route("pending_id_verification", when="kyc_pending"),
                Route("manual_review"),
            ),
            trigger=SYSTEM,
            label="Collection completed",
        ),
        Action(
            "processes_concluded",
            ("pending_process",),
            (Route("pending_id_verification", when="kyc_pending"), Route("manual_review")),
            trigger=SYSTEM,
            guards=("no_processes_pending",),
            label="Processes concluded",
        ),
        Action(
            "kyc_completed",
            ("pending_id_verification",),
            (Route("manual_review"),),
            trigger=SYSTEM,
            guards=("no_kyc_pending",),
            label="UBO KYC completed",
        ),
        # Back to manual review, unless UBOs' KYC is still pending (then approval waits for it).
        Action(
            "reupload_received",
            ("revisions",),
            (Route("pending_id_verification", when="kyc_pending"), Route("manual_review")),
            trigger=SYSTEM,
            guards=("no_reuploads_pending",),
            label="Re-upload received",
        ),
    ),
    sla={"hours": 72},
)

SIMPLE = Workflow(
    name="simple",
    version=1,
    title="Simple case",
    description="Open, pending, approved, declined; the status may be updated directly (seed 003).",
    initial="open",
    statuses=(
        Status("open", "Open", description="The case is ready for investigation."),
        Status("pending", "Pending", waiting=True, description="The case is awaiting further action or information."),
        Status("approved", "Approved", final=True, description="The case has been reviewed and approved."),
        Status("declined", "Declined", final=True, description="The case has been reviewed and declined."),
    ),
    actions=(
        Action("approve", ("open", "pending"), (Route("approved"),), label="Approve", decision="approved"),
        Action(
            "decline",
            ("open", "pending"),
            (Route("declined"),),
            label="Decline",
            reason_required=True,
            decision="declined",
            aliases=("reject",),
        ),
    ),
    block_kinds=("user_data", "registry_data", "enriched", "document"),
    set_status=SetStatusRule(sources=("open", "pending"), targets=("open", "pending", "approved", "declined")),
    sla={"hours": 48},
)

_SCREENING_OPEN = (
    "pending_payment",
    "pending_customer_payment",
    "awaiting_order",
    "pending",
    "awaiting_subject",
    "in_progress",
    "pending_case_decision",
)

SCREENING = Workflow(
    name="screening",
    version=1,
    title="Background screening",
    description="A case per subject and process; activities hold the checks and their results (seed 002).",
    initial="pending",
    statuses=(
        Status("pending_payment", "Pending payment", waiting=True, description="Waiting for payment from the subject."),
        Status(
            "pending_customer_payment", "Pending customer payment", description="Waiting for payment by the customer."
        ),
        Status("awaiting_order", "Awaiting order", description="Waiting to be added to an order."),
        Status("pending", "Pending", description="The case has not yet been initiated."),
        Status(
            "awaiting_subject",
            "Awaiting subject",
            waiting=True,
            description="Waiting for the subject to submit the case portal.",
        ),
        Status("in_progress", "In progress", description="External activity has begun."),
        Status(
            "pending_case_decision",
            "Pending case decision",
            description="All activity has completed; decisions still required.",
        ),
        Status("complete", "Complete", final=True, description="All activity has completed and decisions are made."),
        Status("cancelled", "Cancelled", final=True, description="The case has been cancelled."),
    ),
    actions=(
        Action(
            "complete",
            ("pending_case_decision",),
            (Route("complete"),),
            label="Complete",
            guards=("activities_complete", "activities_decided"),
            takes_decision=True,
        ),
        Action(
            "cancel",
            _SCREENING_OPEN,
            (Route("cancelled"),),
            label="Cancel",
            reason_required=True,
            decision="cancelled",
            aliases=("reject",),
        ),
        Action(
            "payment_received",
            ("pending_payment", "pending_customer_payment"),
            (Route("pending"),),
            trigger=SYSTEM,
            label="Payment received",
        ),
        Action("order_added", ("awaiting_order",), (Route("pending"),), trigger=SYSTEM, label="Added to an order"),
        Action("initiated", ("pending",), (Route("awaiting_subject"),), trigger=SYSTEM, label="Subject invited"),
        Action(
            "subject_submitted",
            ("awaiting_subject",),
            (Route("in_progress"),),
            trigger=SYSTEM,
            label="Subject submitted the case portal",
        ),
        Action(
            "activities_completed",
            ("in_progress",),
            (Route("pending_case_decision"),),
            trigger=SYSTEM,
            guards=("activities_complete",),
            label="All activities completed",
        ),
    ),
    block_kinds=("user_data", "registry_data", "enriched", "document"),
    requirements=(
        ActivityRequirement("basic_details", "Basic Details"),
        ActivityRequirement(
            "dbs_enhanced",
            "DBS Enhanced",
            team="dbs",
            config={"level": "enhanced", "barring_lists": ["adults", "children"]},
        ),
        ActivityRequirement("document_upload", "Document Upload"),
    ),
    decisions=("reviewed",),
    set_status=SetStatusRule(sources=_SCREENING_OPEN, targets=_SCREENING_OPEN),
    sla={"hours": 120},
)

# A kyb case's KYC block is a child case on this workflow, one per UBO (seed 000:
# "KYC block (AKA - Child Workflow)"). Reaching a final status concludes the
# block on the parent.
KYC = Workflow(
    name="kyc",
    version=1,
    title="UBO KYC",
    description="One person's KYC flow, run as a child case of a kyb case (seed 000's KYC block).",
    initial="pending_verification",
    statuses=(
        Status(
            "pending_verification",
            "Pending verification",
            waiting=True,
            description="The KYC flow was sent; the person has not gone through it yet.",
        ),
        Status("manual_review", "Manual review", description="The person went through the KYC flow; ready for review."),
        Status("approved", "Approved", final=True, description="The person's KYC was approved."),
        Status("rejected", "Rejected", final=True, description="The person's KYC was rejected."),
    ),
    actions=(
        Action("approve", ("manual_review",), (Route("approved"),), label="Approve", decision="approved"),
        Action(
            "reject",
            ("pending_verification", "manual_review"),
            (Route("rejected"),),
            label="Reject",
            reason_required=True,
            decision="rejected",
        ),
        Action(
            "verification_submitted",
            ("pending_verification",),
            (Route("manual_review"),),
            trigger=SYSTEM,
            label="The person completed the KYC flow",
        ),
        Action(
            "verification_passed",
            ("pending_verification", "manual_review"),
            (Route("approved"),),
            trigger=SYSTEM,
            decision="approved",
            label="The KYC vendor verified the person",
        ),
        Action(
            "verification_failed",
            ("pending_verification", "manual_review"),
            (Route("rejected"),),
            trigger=SYSTEM,
            decision="rejected",
            label="The KYC vendor could not verify the person",
        ),
    ),
    block_kinds=("user_data", "registry_data", "enriched", "document"),
)

BUILTIN: dict[str, Workflow] = {wf.name: wf for wf in (KYB, SIMPLE, SCREENING, KYC)}
