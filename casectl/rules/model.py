"""The workflow model and the one question it answers.

Pure Python: no I/O, no clock, no SQLite. Given a workflow and a case's
state (status, blocks, activities, who is acting) it says which actions may
happen now, where each would lead, and why the others may not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

AGENT = "agent"
SYSTEM = "system"


@dataclass(frozen=True)
class Status:
    name: str
    label: str = ""
    final: bool = False
    # The case waits on the subject: the SLA clock pauses here.
    waiting: bool = False
    description: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Route:
    """Where an action leads: the first route whose guard holds wins."""

    to: str
    when: str | None = None


@dataclass(frozen=True)
class Action:
    name: str
    sources: tuple[str, ...]
    routes: tuple[Route, ...]
    trigger: str = AGENT
    guards: tuple[str, ...] = ()
    label: str = ""
    reason_required: bool = False
    # Recorded on the case as its decision when the action succeeds.
    decision: str | None = None
    # The agent picks the decision from the workflow's decisions (default: the first).
    takes_decision: bool = False
    # Block status moves the action performs, e.g. reupload_needed -> pending_reupload.
    block_moves: tuple[tuple[str, str], ...] = ()
    # Messages queued to the outbox (e.g. the re-upload email).
    messages: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # Side effects declared in the workflow (webhook, email, crm).
    effects: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.to for r in self.routes))


@dataclass(frozen=True)
class ActivityRequirement:
    """An activity a workflow creates on every new case (seed 002)."""

    type: str
    label: str = ""
    team: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class BlockKind:
    name: str
    agent_editable: bool
    actions: tuple[str, ...]

    @property
    def has_status(self) -> bool:
        return bool(self.actions)


# Seed 000's block table, literally.
BLOCK_KINDS: tuple[BlockKind, ...] = (
    BlockKind("user_data", agent_editable=True, actions=()),
    BlockKind("registry_data", agent_editable=False, actions=()),
    BlockKind("enriched", agent_editable=False, actions=()),
    BlockKind("document", agent_editable=True, actions=("approve", "reupload")),
    BlockKind("kyc", agent_editable=True, actions=("approve", "reupload")),
)
BLOCK_KINDS_BY_NAME = {k.name: k for k in BLOCK_KINDS}

APPROVED = "approved"
REUPLOAD_NEEDED = "reupload_needed"
PENDING_ID_VERIFICATION = "pending_id_verification"
PENDING_REUPLOAD = "pending_reupload"
BLOCK_STATUSES = (APPROVED, REUPLOAD_NEEDED, PENDING_ID_VERIFICATION, PENDING_REUPLOAD)

ACTIVITY_STATES = (
    "pending_payment",
    "awaiting_subject",
    "pending",
    "awaiting_agent",
    "in_progress",
    "pending_activity_decision",
    "complete",
    "cancelled",
)
ACTIVITY_DONE_STATES = ("complete", "cancelled")


@dataclass(frozen=True)
class SetStatusRule:
    """Which direct status changes (`casectl status`) a workflow allows."""

    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.targets)


@dataclass(frozen=True)
class Workflow:
    name: str
    version: int
    statuses: tuple[Status, ...]
    initial: str
    actions: tuple[Action, ...]
    title: str = ""
    description: str = ""
    block_kinds: tuple[str, ...] = tuple(k.name for k in BLOCK_KINDS)
    requirements: tuple[ActivityRequirement, ...] = ()
    activity_states: tuple[str, ...] = ACTIVITY_STATES
    decisions: tuple[str, ...] = ("reviewed",)
    set_status: SetStatusRule = SetStatusRule()
    # Actions that the case's creator or last data editor may not perform.
    four_eyes: tuple[str, ...] = ()
    sla: Mapping[str, Any] | None = field(default=None, compare=False)
    # Effects on any status change (webhook, email, crm).
    effects: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def status_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.statuses)

    @property
    def final_statuses(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.statuses if s.final)

    @property
    def waiting_statuses(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.statuses if s.waiting)

    def status(self, name: str) -> Status | None:
        return next((s for s in self.statuses if s.name == name), None)

    def is_final(self, name: str) -> bool:
        s = self.status(name)
        return bool(s and s.final)

    def action(self, name: str) -> Action | None:
        for a in self.actions:
            if a.name == name or name in a.aliases:
                return a
        return None

    def actions_from(self, status: str, trigger: str = AGENT) -> tuple[Action, ...]:
        """The actions a status offers, before guards: the seed's table."""
        return tuple(a for a in self.actions if a.trigger == trigger and status in a.sources)


@dataclass(frozen=True)
class BlockState:
    name: str
    kind: str
    status: str | None = None
    # For a kyc block backed by a child case: has that case reached a final status?
    child_final: bool | None = None


@dataclass(frozen=True)
class ActivityState:
    id: str
    type: str
    state: str
    decision: str | None = None


@dataclass(frozen=True)
class CaseState:
    """Everything the rules look at; built by the services from the store."""

    status: str
    blocks: tuple[BlockState, ...] = ()
    activities: tuple[ActivityState, ...] = ()
    actor: str | None = None
    created_by: str | None = None
    last_editor: str | None = None


@dataclass(frozen=True)
class Verdict:
    action: str
    allowed: bool
    target: str | None = None
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


# --- guards -----------------------------------------------------------------
# A guard is a predicate on (workflow, state) and an explanation of what is
# missing when it does not hold.


def _marked_for_reupload(wf: Workflow, s: CaseState) -> list[str]:
    return [b.name for b in s.blocks if b.status == REUPLOAD_NEEDED]


def _kyc_pending(wf: Workflow, s: CaseState) -> list[str]:
    return [
        b.name
        for b in s.blocks
        if b.kind == "kyc" and (b.status in (PENDING_ID_VERIFICATION, PENDING_REUPLOAD) or b.child_final is False)
    ]


def _activities_open(wf: Workflow, s: CaseState) -> list[str]:
    return [f"{a.id} ({a.type}: {a.state})" for a in s.activities if a.state not in ACTIVITY_DONE_STATES]


def _activities_undecided(wf: Workflow, s: CaseState) -> list[str]:
    return [f"{a.id} ({a.type})" for a in s.activities if a.state == "complete" and not a.decision]


def _reuploads_pending(wf: Workflow, s: CaseState) -> list[str]:
    return [b.name for b in s.blocks if b.status in (PENDING_REUPLOAD, REUPLOAD_NEEDED)]


def _unapproved_blocks(wf: Workflow, s: CaseState) -> list[str]:
    return [
        f"{b.name} ({b.status or 'awaiting review'})"
        for b in s.blocks
        if b.kind in ("document", "kyc") and b.status != APPROVED
    ]


def _same_person(wf: Workflow, s: CaseState) -> list[str]:
    who = []
    if s.actor and s.actor == s.created_by:
        who.append("created the case")
    if s.actor and s.actor == s.last_editor:
        who.append("last edited its data")
    return who


@dataclass(frozen=True)
class Guard:
    name: str
    # Returns the offending items; the guard holds when the list is empty
    # (or, with negate, when it is not).
    items: Callable[[Workflow, CaseState], list[str]]
    negate: bool
    explain: str

    def holds(self, wf: Workflow, s: CaseState) -> bool:
        found = bool(self.items(wf, s))
        return found if self.negate else not found

    def why_not(self, wf: Workflow, s: CaseState) -> str:
        items = self.items(wf, s)
        return self.explain.format(items=", ".join(items), actor=s.actor or "?")


GUARDS: dict[str, Guard] = {
    g.name: g
    for g in (
        Guard(
            "has_reupload_marks",
            _marked_for_reupload,
            True,
            "no block is marked reupload_needed (mark one with `casectl block ID BLOCK reupload`)",
        ),
        Guard("kyc_pending", _kyc_pending, True, "no KYC block is pending"),
        Guard("no_kyc_pending", _kyc_pending, False, "KYC still pending: {items}"),
        Guard("processes_pending", _activities_open, True, "no process is pending"),
        Guard("no_processes_pending", _activities_open, False, "processes still pending: {items}"),
        Guard("activities_complete", _activities_open, False, "activities not complete: {items}"),
        Guard("activities_decided", _activities_undecided, False, "activities without a decision: {items}"),
        Guard("no_reuploads_pending", _reuploads_pending, False, "re-uploads still pending: {items}"),
        Guard(
            "blocks_approved",
            _unapproved_blocks,
            False,
            "document and KYC blocks not approved yet: {items} (`casectl block ID BLOCK approve`)",
        ),
        Guard("four_eyes", _same_person, False, "four-eyes rule: {actor} {items}; another agent must do this"),
    )
}


def check(wf: Workflow, state: CaseState, action_name: str, trigger: str = AGENT) -> Verdict:
    """May `action_name` happen to a case in `state` now? If not, why not."""
    action = wf.action(action_name)
    if action is None:
        names = ", ".join(a.name for a in wf.actions if a.trigger == trigger) or "none"
        kind = "system event" if trigger == SYSTEM else "action"
        return Verdict(
            action_name, False, reasons=(f"workflow {wf.name} has no {kind} '{action_name}' ({kind}s: {names})",)
        )
    if action.trigger != trigger:
        how = "`casectl event`" if action.trigger == SYSTEM else "`casectl act`"
        return Verdict(
            action.name,
            False,
            reasons=(
                f"'{action.name}' is a{' system event' if action.trigger == SYSTEM else 'n agent action'}: use {how}",
            ),
        )
    if state.status not in action.sources:
        return Verdict(action.name, False, reasons=(f"not allowed in status {state.status}",))
    reasons = []
    guards = action.guards + (("four_eyes",) if action.name in wf.four_eyes else ())
    for name in guards:
        guard = GUARDS[name]
        if not guard.holds(wf, state):
            reasons.append(guard.why_not(wf, state))
    if reasons:
        return Verdict(action.name, False, reasons=tuple(reasons))
    for route in action.routes:
        if route.when is None or GUARDS[route.when].holds(wf, state):
            return Verdict(action.name, True, target=route.to)
    return Verdict(action.name, False, reasons=("no route applies",))


def allowed_actions(wf: Workflow, state: CaseState, trigger: str = AGENT) -> list[Verdict]:
    """The actions that would succeed now, in the workflow's order."""
    verdicts = (check(wf, state, a.name, trigger) for a in wf.actions if a.trigger == trigger)
    return [v for v in verdicts if v.allowed]


def check_set_status(wf: Workflow, state: CaseState, to: str) -> Verdict:
    """May the status be set directly to `to` (seed 003's "update status")?"""
    action = "status"
    if wf.status(to) is None:
        return Verdict(
            action,
            False,
            reasons=(f"workflow {wf.name} has no status '{to}' (statuses: {', '.join(wf.status_names)})",),
        )
    rule = wf.set_status
    if not rule.enabled:
        return Verdict(
            action, False, reasons=(f"workflow {wf.name} does not allow setting the status directly; use its actions",)
        )
    if state.status not in rule.sources:
        return Verdict(action, False, reasons=(f"the status cannot be set directly from {state.status}",))
    if to not in rule.targets:
        return Verdict(
            action, False, reasons=(f"the status cannot be set directly to {to} (allowed: {', '.join(rule.targets)})",)
        )
    if to == state.status:
        return Verdict(action, False, reasons=(f"the case is already {to}",))
    return Verdict(action, True, target=to)


def block_action_check(kind: str, status: str | None, action: str) -> Verdict:
    """May a block of `kind` in `status` take `action` (approve, reupload, set)?"""
    bk = BLOCK_KINDS_BY_NAME.get(kind)
    if bk is None:
        return Verdict(action, False, reasons=(f"unknown block kind '{kind}'",))
    if action == "set":
        if not bk.agent_editable:
            return Verdict(
                action, False, reasons=(f"{kind} blocks are read-only for agents (they come from a third party)",)
            )
        return Verdict(action, True)
    if action not in bk.actions:
        allowed = ", ".join(bk.actions) or "none"
        return Verdict(action, False, reasons=(f"{kind} blocks have no action '{action}' (block actions: {allowed})",))
    if action == "approve" and status == APPROVED:
        return Verdict(action, False, reasons=("the block is already approved",))
    if action == "reupload" and status in (REUPLOAD_NEEDED, PENDING_REUPLOAD):
        return Verdict(action, False, reasons=(f"the block is already {status}",))
    target = APPROVED if action == "approve" else REUPLOAD_NEEDED
    return Verdict(action, True, target=target)


def reachable_statuses(wf: Workflow) -> set[str]:
    seen = {wf.initial}
    frontier = [wf.initial]
    while frontier:
        current = frontier.pop()
        nexts = [t for a in wf.actions if current in a.sources for t in a.targets]
        if current in wf.set_status.sources:
            nexts.extend(wf.set_status.targets)
        for t in nexts:
            if t not in seen:
                seen.add(t)
                frontier.append(t)
    return seen


def lint(wf: Workflow) -> list[tuple[str, str]]:
    """Semantic problems of a workflow as (JSON path, message) pairs."""
    problems: list[tuple[str, str]] = []
    names = wf.status_names
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append((f"$.statuses[{i}].name", f"status '{name}' is defined twice"))
    if wf.initial not in names:
        problems.append(("$.initial", f"no initial status: '{wf.initial}' is not a defined status"))
    elif wf.is_final(wf.initial):
        problems.append(("$.initial", f"the initial status '{wf.initial}' is final"))
    if not wf.final_statuses:
        problems.append(("$.statuses", "no final status: no case could ever be closed"))
    action_names = [a.name for a in wf.actions]
    for i, a in enumerate(wf.actions):
        path = f"$.actions[{i}]"
        if a.name in action_names[:i]:
            problems.append((f"{path}.name", f"action '{a.name}' is defined twice"))
        for j, src in enumerate(a.sources):
            if src not in names:
                problems.append((f"{path}.from[{j}]", f"action '{a.name}' starts from unknown status '{src}'"))
            elif wf.is_final(src):
                problems.append((f"{path}.from[{j}]", f"final status '{src}' has an outgoing action '{a.name}'"))
        for j, r in enumerate(a.routes):
            if r.to not in names:
                problems.append((f"{path}.to", f"action '{a.name}' leads into unknown status '{r.to}'"))
            if r.when is not None and r.when not in GUARDS:
                problems.append((f"{path}.to[{j}].when", f"unknown guard '{r.when}'"))
        for j, g in enumerate(a.guards):
            if g not in GUARDS:
                problems.append((f"{path}.guards[{j}]", f"unknown guard '{g}' (guards: {', '.join(sorted(GUARDS))})"))
        if a.routes and a.routes[-1].when is not None:
            problems.append((f"{path}.to", f"action '{a.name}' has no unconditional last route"))
    for j, name in enumerate(wf.four_eyes):
        if name not in action_names:
            problems.append((f"$.four_eyes[{j}]", f"four_eyes names unknown action '{name}'"))
    for key, values in (("from", wf.set_status.sources), ("to", wf.set_status.targets)):
        for j, s in enumerate(values):
            if s not in names:
                problems.append((f"$.set_status.{key}[{j}]", f"set_status names unknown status '{s}'"))
    for j, s in enumerate(wf.set_status.sources):
        if wf.is_final(s):
            problems.append((f"$.set_status.from[{j}]", f"final status '{s}' has an outgoing direct status change"))
    for j, k in enumerate(wf.block_kinds):
        if k not in BLOCK_KINDS_BY_NAME:
            problems.append((f"$.block_kinds[{j}]", f"unknown block kind '{k}'"))
    if wf.initial in names:
        reachable = reachable_statuses(wf)
        for i, name in enumerate(names):
            if name not in reachable:
                problems.append((f"$.statuses[{i}]", f"status '{name}' is unreachable from '{wf.initial}'"))
    return problems
