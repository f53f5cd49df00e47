"""The built-in workflows, written as tables you can read against the seeds.

kyb       seed 000 (the case dashboard's statuses, actions and blocks)
simple    seed 003 (open / pending / approved / declined, update status)
screening seed 002 (background-check cases with activities and decisions)
kyc       seed 000's KYC block: a child case per UBO
"""

from __future__ import annotations

from .model import (
    AUTO,
    PENDING_REUPLOAD,
    REUPLOAD_NEEDED,
    REUPLOAD_REQUEST,
    SYSTEM,
    Action,
    ActivityRequirement,
    ChildPolicy,
    Message,
    Route,
    SetStatusRule,
    Status,
    Workflow,
)

KYB = Workflow(
    name="kyb",
    version=2,
    title="KYB onboarding",
    description="Business onboarding with documents, registry data and UBO KYC (seed 000).",
    initial="collection_flow",
    statuses=(
        Status(
            name="collection_flow",
            label="Collection flow",
            waiting=True,
            description="The user hasn't completed the collection flow.",
        ),
        Status(
            name="pending_process",
            label="Pending process",
            description="Collection completed; processes still running. Approval once they conclude.",
        ),
        Status(
            name="pending_id_verification",
            label="Pending ID verification",
            description="Collection completed; UBOs' KYC not done yet. Approval once it concludes.",
        ),
        Status(
            name="manual_review",
            label="Manual review",
            description="All information collected; ready for manual review.",
        ),
        Status(
            name="revisions",
            label="Revisions",
            waiting=True,
            description="An agent asked the user or a UBO to re-upload documents or KYC.",
        ),
        Status(name="approved", label="Approved", final=True, description="An agent reviewed and approved the case."),
        Status(
            name="rejected",
            label="Rejected",
            final=True,
            description="An agent reviewed and permanently rejected the case.",
        ),
    ),
    actions=(
        Action(
            name="approve",
            sources=("manual_review",),
            routes=(Route(to="approved"),),
            label="Approve",
            guards=("no_reuploads_pending", "blocks_approved"),
            decision="approved",
        ),
        Action(
            name="reject",
            sources=("pending_process", "pending_id_verification", "manual_review", "revisions"),
            routes=(Route(to="rejected"),),
            label="Reject",
            reason_required=True,
            decision="rejected",
        ),
        Action(
            name="request_reuploads",
            sources=("pending_process", "pending_id_verification", "manual_review"),
            routes=(Route(to="revisions"),),
            label="Ask for all re-uploads",
            guards=("has_reupload_marks",),
            block_moves=((REUPLOAD_NEEDED, PENDING_REUPLOAD),),
            messages=(Message(kind=REUPLOAD_REQUEST),),
        ),
        Action(
            name="collection_completed",
            sources=("collection_flow",),
            routes=(
                Route(to="pending_process", when="processes_pending"),
                Route(to="pending_id_verification", when="kyc_pending"),
                Route(to="manual_review"),
            ),
            trigger=SYSTEM,
            label="Collection completed",
        ),
        Action(
            name="processes_concluded",
            sources=("pending_process",),
            routes=(Route(to="pending_id_verification", when="kyc_pending"), Route(to="manual_review")),
            trigger=AUTO,
            guards=("no_processes_pending",),
            label="Processes concluded",
        ),
        Action(
            name="kyc_completed",
            sources=("pending_id_verification",),
            routes=(Route(to="manual_review"),),
            trigger=AUTO,
            guards=("no_kyc_pending",),
            label="UBO KYC completed",
        ),
        # Back to manual review, unless UBOs' KYC is still pending (then approval waits for it).
        Action(
            name="reupload_received",
            sources=("revisions",),
            routes=(Route(to="pending_id_verification", when="kyc_pending"), Route(to="manual_review")),
            trigger=AUTO,
            guards=("no_reuploads_pending",),
            label="Re-upload received",
        ),
    ),
    children=ChildPolicy(workflow="kyc", on_parent_final="withdraw"),
    sla={"hours": 72},
)

SIMPLE = Workflow(
    name="simple",
    version=2,
    title="Simple case",
    description="Open, pending, approved, declined; the status may be updated directly (seed 003).",
    initial="open",
    statuses=(
        Status(name="open", label="Open", description="The case is ready for investigation."),
        Status(
            name="pending",
            label="Pending",
            waiting=True,
            description="The case is awaiting further action or information.",
        ),
        Status(name="approved", label="Approved", final=True, description="The case has been reviewed and approved."),
        Status(name="declined", label="Declined", final=True, description="The case has been reviewed and declined."),
    ),
    actions=(
        Action(
            name="approve",
            sources=("open", "pending"),
            routes=(Route(to="approved"),),
            label="Approve",
            decision="approved",
        ),
        Action(
            name="decline",
            sources=("open", "pending"),
            routes=(Route(to="declined"),),
            label="Decline",
            reason_required=True,
            decision="declined",
            aliases=("reject",),
        ),
    ),
    block_kinds=("user_data", "registry_data", "enriched", "document"),
    create_statuses=("open", "pending"),
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
    version=2,
    title="Background screening",
    description="A case per subject and process; activities hold the checks and their results (seed 002).",
    initial="pending",
    statuses=(
        Status(
            name="pending_payment",
            label="Pending payment",
            waiting=True,
            description="Waiting for payment from the subject.",
        ),
        Status(
            name="pending_customer_payment",
            label="Pending customer payment",
            description="Waiting for payment by the customer.",
        ),
        Status(name="awaiting_order", label="Awaiting order", description="Waiting to be added to an order."),
        Status(name="pending", label="Pending", description="The case has not yet been initiated."),
        Status(
            name="awaiting_subject",
            label="Awaiting subject",
            waiting=True,
            description="Waiting for the subject to submit the case portal.",
        ),
        Status(name="in_progress", label="In progress", description="External activity has begun."),
        Status(
            name="pending_case_decision",
            label="Pending case decision",
            description="All activity has completed; decisions still required.",
        ),
        Status(
            name="complete",
            label="Complete",
            final=True,
            description="All activity has completed and decisions are made.",
        ),
        Status(name="cancelled", label="Cancelled", final=True, description="The case has been cancelled."),
    ),
    actions=(
        Action(
            name="complete",
            sources=("pending_case_decision",),
            routes=(Route(to="complete"),),
            label="Complete",
            guards=("activities_complete", "activities_decided"),
            takes_decision=True,
        ),
        Action(
            name="cancel",
            sources=_SCREENING_OPEN,
            routes=(Route(to="cancelled"),),
            label="Cancel",
            reason_required=True,
            decision="cancelled",
            aliases=("reject",),
        ),
        Action(
            name="payment_received",
            sources=("pending_payment", "pending_customer_payment"),
            routes=(Route(to="pending"),),
            trigger=SYSTEM,
            label="Payment received",
        ),
        Action(
            name="order_added",
            sources=("awaiting_order",),
            routes=(Route(to="pending"),),
            trigger=SYSTEM,
            label="Added to an order",
        ),
        Action(
            name="initiated",
            sources=("pending",),
            routes=(Route(to="awaiting_subject"),),
            trigger=SYSTEM,
            label="Subject invited",
        ),
        Action(
            name="subject_submitted",
            sources=("awaiting_subject",),
            routes=(Route(to="in_progress"),),
            trigger=SYSTEM,
            label="Subject submitted the case portal",
        ),
        Action(
            name="activities_completed",
            sources=("in_progress",),
            routes=(Route(to="pending_case_decision"),),
            trigger=AUTO,
            guards=("activities_complete",),
            label="All activities completed",
        ),
    ),
    block_kinds=("user_data", "registry_data", "enriched", "document"),
    requirements=(
        ActivityRequirement(type="basic_details", label="Basic Details"),
        ActivityRequirement(
            type="dbs_enhanced",
            label="DBS Enhanced",
            team="dbs",
            config={"level": "enhanced", "barring_lists": ["adults", "children"]},
        ),
        ActivityRequirement(type="document_upload", label="Document Upload"),
    ),
    decisions=("reviewed",),
    # Seed 002: a case starts pending, or waits for a payment or an order first.
    create_statuses=("pending", "pending_payment", "pending_customer_payment", "awaiting_order"),
    set_status=SetStatusRule(sources=_SCREENING_OPEN, targets=_SCREENING_OPEN),
    sla={"hours": 120},
)

# A kyb case's KYC block is a child case on this workflow, one per UBO (seed 000:
# "KYC block (AKA - Child Workflow)"). Reaching a final status concludes the
# block on the parent; a parent decided first withdraws it.
KYC = Workflow(
    name="kyc",
    version=2,
    title="UBO KYC",
    description="One person's KYC flow, run as a child case of a kyb case (seed 000's KYC block).",
    initial="pending_verification",
    statuses=(
        Status(
            name="pending_verification",
            label="Pending verification",
            waiting=True,
            description="The KYC flow was sent; the person has not gone through it yet.",
        ),
        Status(
            name="manual_review",
            label="Manual review",
            description="The person went through the KYC flow; ready for review.",
        ),
        Status(name="approved", label="Approved", final=True, description="The person's KYC was approved."),
        Status(name="rejected", label="Rejected", final=True, description="The person's KYC was rejected."),
        Status(
            name="withdrawn",
            label="Withdrawn",
            final=True,
            description="The parent case was decided while this KYC flow was still open.",
        ),
    ),
    actions=(
        Action(
            name="approve",
            sources=("manual_review",),
            routes=(Route(to="approved"),),
            label="Approve",
            decision="approved",
        ),
        Action(
            name="reject",
            sources=("pending_verification", "manual_review"),
            routes=(Route(to="rejected"),),
            label="Reject",
            reason_required=True,
            decision="rejected",
        ),
        Action(
            name="verification_submitted",
            sources=("pending_verification",),
            routes=(Route(to="manual_review"),),
            trigger=SYSTEM,
            label="The person completed the KYC flow",
        ),
        Action(
            name="verification_passed",
            sources=("pending_verification", "manual_review"),
            routes=(Route(to="approved"),),
            trigger=SYSTEM,
            decision="approved",
            label="The KYC vendor verified the person",
        ),
        Action(
            name="verification_failed",
            sources=("pending_verification", "manual_review"),
            routes=(Route(to="rejected"),),
            trigger=SYSTEM,
            decision="rejected",
            label="The KYC vendor could not verify the person",
        ),
        # Fired by the kernel on every open KYC case when its parent reaches a final status.
        Action(
            name="withdraw",
            sources=("pending_verification", "manual_review"),
            routes=(Route(to="withdrawn"),),
            trigger=SYSTEM,
            decision="withdrawn",
            label="The parent case was decided",
        ),
    ),
    block_kinds=("user_data", "registry_data", "enriched", "document"),
)

BUILTIN: dict[str, Workflow] = {wf.name: wf for wf in (KYB, SIMPLE, SCREENING, KYC)}
