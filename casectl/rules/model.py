"""The workflow model and the one question it answers.

Pure Python: no I/O, no clock, no SQLite. Given a workflow and a case's
state (status, blocks, activities, who is acting) it says which actions may
happen now, where each would lead, and why the others may not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .routines import Routine
from .routines import lint as _routine_lint

AGENT = "agent"
SYSTEM = "system"
# Fired by the kernel itself as soon as its guards hold after a change; also accepted as a system event.
AUTO = "auto"
TRIGGERS = (AGENT, SYSTEM, AUTO)
# How many automatic actions one change may set off in a row: a bound, so a cycle cannot hang a command.
AUTO_LIMIT = 16

# What a declared message means (Action.messages). The services that send it read only this name.
REUPLOAD_REQUEST = "reupload_request"
MESSAGE_KINDS: dict[str, str] = {
    REUPLOAD_REQUEST: "ask the subject to re-upload the blocks this action moved to pending_reupload; "
    "a KYC block gets a new KYC flow",
}

# What happens to a case's open children when it reaches a final status (ChildPolicy.on_parent_final).
WITHDRAW = "withdraw"
KEEP = "keep"


# Request Tracker's status categories: where a case is in its life.
INITIAL, ACTIVE, WAITING, INACTIVE = "initial", "active", "waiting", "inactive"
CATEGORIES = (INITIAL, ACTIVE, WAITING, INACTIVE)


@dataclass(frozen=True, kw_only=True)
class Status:
    name: str
    label: str = ""
    final: bool = False
    # The case waits on the subject: the SLA clock pauses here.
    waiting: bool = False
    description: str = ""
    # One of CATEGORIES; empty: inactive when final, waiting when waiting, else active
    # (the workflow's initial status: initial).
    category: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True, kw_only=True)
class Route:
    """Where an action leads: the first route that applies wins. A route applies from the
    statuses it names in `sources` (all of the action's when empty) and when its `when`
    (a guard's name or a JMESPath condition, see rules/conditions.py) holds."""

    to: str
    when: str | None = None
    sources: tuple[str, ...] = ()

    def leaves(self, status: str) -> bool:
        return not self.sources or status in self.sources


@dataclass(frozen=True, kw_only=True)
class Message:
    """A message an action sends, by kind (MESSAGE_KINDS says what each means)."""

    kind: str

    @property
    def meaning(self) -> str:
        return MESSAGE_KINDS.get(self.kind, "unknown message")


@dataclass(frozen=True, kw_only=True)
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
    messages: tuple[Message, ...] = ()
    aliases: tuple[str, ...] = ()
    # Leads out of a final (inactive) status: re-opening clears the case's decision.
    reopens: bool = False
    # Only a user holding one of these roles may perform it (`casectl users add NAME --role R`).
    roles: tuple[str, ...] = ()
    # Side effects declared in the workflow (webhook, email, crm).
    effects: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.to for r in self.routes))

    def targets_from(self, status: str) -> tuple[str, ...]:
        """Where the action may lead a case in `status` (its routes that leave it)."""
        return tuple(dict.fromkeys(r.to for r in self.routes if r.leaves(status)))

    @property
    def conditions(self) -> tuple[str, ...]:
        """Its guards and route conditions that are expressions, not built-in guards."""
        named = self.guards + tuple(r.when for r in self.routes if r.when is not None)
        return tuple(c for c in named if c not in GUARDS)

    @property
    def automatic(self) -> bool:
        return self.trigger == AUTO

    def sends(self, kind: str) -> bool:
        return any(m.kind == kind for m in self.messages)

    def answers_to(self, trigger: str) -> bool:
        """Whether this action may be asked for as `trigger` (an automatic one is also a system event)."""
        return self.trigger == trigger or (trigger == SYSTEM and self.trigger == AUTO)


@dataclass(frozen=True, kw_only=True)
class ActivityRequirement:
    """An activity a workflow creates on every new case (seed 002)."""

    type: str
    label: str = ""
    team: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, kw_only=True)
class BlockKind:
    name: str
    agent_editable: bool
    actions: tuple[str, ...]
    # Approving a block of this kind needs a stored document to approve.
    needs_document: bool = False

    @property
    def has_status(self) -> bool:
        return bool(self.actions)


# Seed 000's block table, literally.
BLOCK_KINDS: tuple[BlockKind, ...] = (
    BlockKind(name="user_data", agent_editable=True, actions=()),
    BlockKind(name="registry_data", agent_editable=False, actions=()),
    BlockKind(name="enriched", agent_editable=False, actions=()),
    BlockKind(name="document", agent_editable=True, actions=("approve", "reupload"), needs_document=True),
    BlockKind(name="kyc", agent_editable=True, actions=("approve", "reupload")),
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


@dataclass(frozen=True, kw_only=True)
class SetStatusRule:
    """Which direct status changes (`casectl status`) a workflow allows."""

    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.targets)


# The child case's subject fields a for_each may fill from an element (ForEach.subject).
SUBJECT_FIELDS = ("name", "email", "dob", "country", "ref")
# A for_each's default: the element's own name, email, dob and country, as a kyc block's data gives them.
DEFAULT_SUBJECT: tuple[tuple[str, str], ...] = (("name", "name"), ("email", "email"), ("dob", "dob"),
                                                ("country", "country"))  # fmt: skip
# The placeholder a for_each block template numbers its elements with (from 1).
INDEX = "{index}"
# Names no block may take: the case's own data and registry data answer to them (rules/blocks.py).
RESERVED_BLOCK_NAMES = ("data", "registry", "add")


def block_name_problem(name: str) -> str | None:
    """Why `name` cannot name a block (None: it can)."""
    import re

    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", name or ""):
        return "use letters, digits, _ . - (at most 64, starting with a letter or digit)"
    if name in RESERVED_BLOCK_NAMES:
        return "it is reserved (data and registry are the case's own data)"
    return None


@dataclass(frozen=True, kw_only=True)
class ForEach:
    """Child cases from data (Ballerine's iterative child plugin): one child case, behind one kyc
    block, per element of an array in the parent's case document. Every string but `block` is a
    JMESPath expression (rules/conditions.py); `block` is a template with {index} or one."""

    # Over the parent's case document: the elements (an array; null: none).
    items: str
    # The statuses whose entry starts the children (empty: when the case is created).
    on: tuple[str, ...] = ()
    # The children's workflow (None: ChildPolicy.workflow).
    workflow: str | None = None
    # The kyc block's name per element: "ubo_{index}" (from 1), or an expression over the element.
    block: str = "ubo_{index}"
    # Over the element: the child's subject, field by field (SUBJECT_FIELDS).
    subject: tuple[tuple[str, str], ...] = DEFAULT_SUBJECT
    # Over the element: the child's case data (an object), also the block's data.
    data: str = "@"
    # Over the child's case document when it concludes: merged into the block's data (None: nothing).
    result: str | None = None

    @property
    def block_is_template(self) -> bool:
        return INDEX in self.block

    def starts_in(self, status: str, *, created: bool) -> bool:
        """Whether a case arriving in `status` (made there, with `created`) starts its children."""
        return status in self.on if self.on else created

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ForEach:
        subject = d.get("subject")
        return cls(
            items=d["items"],
            on=tuple(d.get("on", ())),
            workflow=d.get("workflow"),
            block=d.get("block", cls.block),
            subject=DEFAULT_SUBJECT if subject is None else tuple(subject.items()),
            data=d.get("data", cls.data),
            result=d.get("result"),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "items": self.items,
            "on": list(self.on),
            "workflow": self.workflow,
            "block": self.block if self.block != ForEach.block else None,
            "subject": dict(self.subject) if self.subject != DEFAULT_SUBJECT else None,
            "data": self.data if self.data != ForEach.data else None,
            "result": self.result,
        }
        return {k: v for k, v in d.items() if v not in (None, [])}


@dataclass(frozen=True, kw_only=True)
class ChildPolicy:
    """Child cases: the workflow a kyc block's case runs on, and what a final parent does to open ones;
    with `for_each`, children made from an array in the case's data."""

    workflow: str = "kyc"
    on_parent_final: str = WITHDRAW
    # The system action fired on each open child when the parent is final (on_parent_final = withdraw).
    withdraw_action: str = "withdraw"
    for_each: ForEach | None = None

    @property
    def for_each_workflow(self) -> str | None:
        """The workflow for_each's children run on (None: no for_each)."""
        return None if self.for_each is None else self.for_each.workflow or self.workflow

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChildPolicy:
        more = {k: v for k, v in d.items() if k != "for_each"}
        return cls(**more, for_each=ForEach.from_dict(d["for_each"]) if d.get("for_each") else None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, without its defaults."""
        default = ChildPolicy()
        d = {
            "workflow": self.workflow if self.workflow != default.workflow else None,
            "on_parent_final": self.on_parent_final if self.on_parent_final != default.on_parent_final else None,
            "for_each": self.for_each.to_dict() if self.for_each else None,
        }
        return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True, kw_only=True)
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
    # The statuses a case may be created in (empty: the initial status only).
    create_statuses: tuple[str, ...] = ()
    children: ChildPolicy = ChildPolicy()
    sla: Mapping[str, Any] | None = field(default=None, compare=False)
    # Effects on any status change (webhook, email, crm).
    effects: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)
    # What the workflow does by itself to a case left in a status (rules/routines.py).
    routines: tuple[Routine, ...] = ()

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

    def category(self, name: str) -> str:
        """The status's category (CATEGORIES), declared or implied."""
        s = self.status(name)
        if s is None:
            return ""
        if s.category:
            return s.category
        if s.final:
            return INACTIVE
        if s.waiting:
            return WAITING
        return INITIAL if name == self.initial else ACTIVE

    def action(self, name: str) -> Action | None:
        for a in self.actions:
            if a.name == name or name in a.aliases:
                return a
        return None

    def actions_from(self, status: str, trigger: str = AGENT) -> tuple[Action, ...]:
        """The actions a status offers, before guards: the seed's table."""
        return tuple(a for a in self.actions if a.trigger == trigger and status in a.sources)

    def automatic_from(self, status: str) -> bool:
        """Whether any automatic action starts from `status` (else there is nothing to advance)."""
        return any(a.automatic and status in a.sources for a in self.actions)

    @property
    def creatable(self) -> tuple[str, ...]:
        return self.create_statuses or (self.initial,)

    def leading_into(self, status: str) -> tuple[Action, ...]:
        """The agent actions that lead into `status`: what a direct status change there must respect."""
        return tuple(a for a in self.actions if a.trigger == AGENT and status in a.targets)

    @property
    def uses_roles(self) -> bool:
        return any(a.roles for a in self.actions)

    @property
    def uses_conditions(self) -> bool:
        """Whether any guard or route is a condition on the case's data (the rules then need its document)."""
        return any(a.conditions for a in self.actions)

    @property
    def protected_statuses(self) -> tuple[str, ...]:
        """Statuses that a four-eyes action leads into."""
        return tuple(dict.fromkeys(t for a in self.actions if a.name in self.four_eyes for t in a.targets))


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
    # The case as the conditions see it (rules/conditions.py); built only for workflows that have some.
    doc: Mapping[str, Any] | None = field(default=None, compare=False)
    # The actor's roles (looked up only for workflows whose actions name roles).
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Request:
    """What the actor asks for along with an action: the rules check these too."""

    reason: str | None = None
    decision: str | None = None


@dataclass(frozen=True)
class Verdict:
    action: str
    allowed: bool
    target: str | None = None
    reasons: tuple[str, ...] = ()
    # The refusal is about the request's input (a missing reason, an unknown decision), not the case: exit 6.
    invalid: bool = False
    # The decision the change records on the case (the action's, the one asked for, or a final status's).
    decision: str | None = None

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


def _trigger_name(trigger: str) -> str:
    return "system event" if trigger in (SYSTEM, AUTO) else "action"


def holds(wf: Workflow, state: CaseState, name: str) -> bool:
    """A built-in guard by name, or else a JMESPath condition on the case document."""
    guard = GUARDS.get(name)
    if guard is not None:
        return guard.holds(wf, state)
    from . import conditions

    return conditions.holds(name, state.doc or {})


def why_not(wf: Workflow, state: CaseState, name: str) -> str:
    guard = GUARDS.get(name)
    if guard is not None:
        return guard.why_not(wf, state)
    from . import conditions

    return conditions.explain(name)


def _guard_reasons(wf: Workflow, state: CaseState, action: Action, trigger: str = AGENT) -> list[str]:
    guards = action.guards + (("four_eyes",) if action.name in wf.four_eyes else ())
    reasons = [why_not(wf, state, name) for name in guards if not holds(wf, state, name)]
    if action.roles and trigger != AUTO and not (state.roles & set(action.roles)):
        who = state.actor or "?"
        has = ", ".join(sorted(state.roles)) or "none"
        reasons.insert(
            0,
            f"{action.name} needs the role {' or '.join(action.roles)}; {who} has {has} "
            f"(`casectl users add {who} --role {action.roles[0]}`)",
        )
    return reasons


def route(wf: Workflow, state: CaseState, action: Action) -> tuple[str | None, list[str]]:
    """The target of the first route that applies, and why each route before it did not."""
    missed: list[str] = []
    for r in action.routes:
        if not r.leaves(state.status):
            continue
        if r.when is None or holds(wf, state, r.when):
            return r.to, missed
        missed.append(f"not to {r.to}: {why_not(wf, state, r.when)}")
    return None, missed


def _check_request(wf: Workflow, action: Action, request: Request, what: str) -> Verdict | None:
    """A refusal when the request lacks what the action needs (a reason, a valid decision)."""
    if action.reason_required and not (request.reason and request.reason.strip()):
        return Verdict(action.name, False, reasons=(f"{what} needs a reason: add --reason TEXT",), invalid=True)
    if action.takes_decision:
        decision = request.decision or wf.decisions[0]
        if decision not in wf.decisions:
            return Verdict(
                action.name,
                False,
                reasons=(f"decision '{decision}' is not one of {', '.join(wf.decisions)}",),
                invalid=True,
            )
    elif request.decision is not None:
        return Verdict(action.name, False, reasons=(f"{action.name} takes no --decision",), invalid=True)
    return None


def _decision(wf: Workflow, action: Action, request: Request | None, target: str) -> str | None:
    if action.decision:
        return action.decision
    if action.takes_decision:
        return (request.decision if request else None) or wf.decisions[0]
    return target if wf.is_final(target) else None


def check(
    wf: Workflow, state: CaseState, action_name: str, trigger: str = AGENT, *, request: Request | None = None
) -> Verdict:
    """May `action_name` happen to a case in `state` now? If not, why not.

    With `request` (the action is about to be performed) the reason and the
    decision it carries are checked too; without it the answer is "could it".
    """
    action = wf.action(action_name)
    if action is None:
        names = ", ".join(a.name for a in wf.actions if a.answers_to(trigger)) or "none"
        kind = _trigger_name(trigger)
        return Verdict(
            action_name, False, reasons=(f"workflow {wf.name} has no {kind} '{action_name}' ({kind}s: {names})",)
        )
    if not action.answers_to(trigger):
        how = "`casectl act`" if action.trigger == AGENT else "`casectl event`"
        article = "an agent action" if action.trigger == AGENT else "a system event"
        return Verdict(action.name, False, reasons=(f"'{action.name}' is {article}: use {how}",))
    if state.status not in action.sources:
        return Verdict(action.name, False, reasons=(f"not allowed in status {state.status}",))
    reasons = _guard_reasons(wf, state, action, trigger)
    if reasons:
        return Verdict(action.name, False, reasons=tuple(reasons))
    target, missed = route(wf, state, action)
    if target is None:
        return Verdict(action.name, False, reasons=tuple(missed) or ("no route applies",))
    if request is not None:
        refused = _check_request(wf, action, request, action.name)
        if refused is not None:
            return refused
    return Verdict(action.name, True, target=target, decision=_decision(wf, action, request, target))


def allowed_actions(wf: Workflow, state: CaseState, trigger: str = AGENT) -> list[Verdict]:
    """The actions that would succeed now, in the workflow's order."""
    verdicts = (check(wf, state, a.name, trigger) for a in wf.actions if a.trigger == trigger)
    return [v for v in verdicts if v.allowed]


def next_automatic(wf: Workflow, state: CaseState) -> Verdict | None:
    """The first automatic action whose guards hold now (the kernel fires it), if any."""
    if wf.is_final(state.status):
        return None
    for a in wf.actions:
        if a.automatic and state.status in a.sources:
            verdict = check(wf, state, a.name, AUTO)
            if verdict.allowed:
                return verdict
    return None


def check_set_status(wf: Workflow, state: CaseState, to: str, *, request: Request | None = None) -> Verdict:
    """May the status be set directly to `to` (seed 003's "update status")?

    A direct change respects what the actions leading into `to` require:
    their guards and four-eyes rule (at least one of them must be allowed),
    the reason it needs and the decision it records.
    """
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
    leading = wf.leading_into(to)
    chosen: Action | None = None
    first_refusal: list[str] = []
    for a in leading:
        reasons = _guard_reasons(wf, state, a)
        if not reasons:
            chosen = a
            break
        first_refusal = first_refusal or [f"{r} (as for {a.name})" for r in reasons]
    if leading and chosen is None:
        return Verdict(action, False, reasons=tuple(first_refusal))
    decision = to if wf.is_final(to) else None
    if chosen is not None:
        if request is not None and chosen.reason_required and not (request.reason and request.reason.strip()):
            return Verdict(
                action,
                False,
                reasons=(f"setting the status to {to} needs a reason, as {chosen.name} does: add --reason TEXT",),
                invalid=True,
            )
        if chosen.decision and wf.is_final(to):
            decision = chosen.decision
    return Verdict(action, True, target=to, decision=decision)


def check_create(wf: Workflow, status: str | None) -> Verdict:
    """May a case be created in `status` (None: the initial status)?"""
    target = status or wf.initial
    if wf.status(target) is None:
        return Verdict(
            "create",
            False,
            reasons=(f"'{target}' is not a status of workflow {wf.name} ({', '.join(wf.status_names)})",),
            invalid=True,
        )
    if target not in wf.creatable:
        return Verdict(
            "create",
            False,
            reasons=(
                f"a {wf.name} case cannot be created in {target}; it may be created in: {', '.join(wf.creatable)}",
            ),
        )
    return Verdict("create", True, target=target)


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
    seen = {wf.initial, *wf.creatable}
    frontier = list(seen)
    while frontier:
        current = frontier.pop()
        nexts = [t for a in wf.actions if current in a.sources for t in a.targets_from(current)]
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
            elif wf.is_final(src) and not a.reopens:
                problems.append(
                    (
                        f"{path}.from[{j}]",
                        f"final status '{src}' has an outgoing action '{a.name}' "
                        '(an action that re-opens a closed case says "reopens": true)',
                    )
                )
            elif wf.is_final(src) and any(wf.is_final(t) for t in a.targets_from(src)):
                problems.append(
                    (f"{path}.to", f"action '{a.name}' re-opens '{src}' into a final status: re-open into an open one")
                )
        if a.reopens and not any(wf.is_final(src) for src in a.sources):
            problems.append((f"{path}.reopens", f"action '{a.name}' re-opens nothing: it starts from no final status"))
        for j, r in enumerate(a.routes):
            if r.to not in names:
                problems.append((f"{path}.to", f"action '{a.name}' leads into unknown status '{r.to}'"))
            problems += _condition_problems(f"{path}.to[{j}].when", r.when)
            for n, src in enumerate(r.sources):
                if src not in a.sources:
                    problems.append(
                        (
                            f"{path}.to[{j}].from[{n}]",
                            f"route from '{src}', which action '{a.name}' does not start from",
                        )
                    )
        for j, g in enumerate(a.guards):
            problems += _condition_problems(f"{path}.guards[{j}]", g)
        for src in a.sources:
            last = [r for r in a.routes if r.leaves(src)]
            if not last:
                problems.append((f"{path}.to", f"action '{a.name}' has no route from '{src}'"))
            elif last[-1].when is not None:
                problems.append((f"{path}.to", f"action '{a.name}' has no unconditional last route from '{src}'"))
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
    for i, status_def in enumerate(wf.statuses):
        if status_def.category and status_def.category not in CATEGORIES:
            problems.append(
                (f"$.statuses[{i}].category", f"unknown category '{status_def.category}' ({', '.join(CATEGORIES)})")
            )
        elif status_def.category and (status_def.category == INACTIVE) != status_def.final:
            problems.append(
                (f"$.statuses[{i}].category", "a final status is inactive, and an inactive status is final")
            )
    for j, k in enumerate(wf.block_kinds):
        if k not in BLOCK_KINDS_BY_NAME:
            problems.append((f"$.block_kinds[{j}]", f"unknown block kind '{k}'"))
    for i, a in enumerate(wf.actions):
        path = f"$.actions[{i}]"
        if a.trigger not in TRIGGERS:
            problems.append((f"{path}.trigger", f"unknown trigger '{a.trigger}' (triggers: {', '.join(TRIGGERS)})"))
        for j, m in enumerate(a.messages):
            if m.kind not in MESSAGE_KINDS:
                problems.append(
                    (f"{path}.messages[{j}]", f"unknown message '{m.kind}' (messages: {', '.join(MESSAGE_KINDS)})")
                )
        if a.automatic and (a.reason_required or a.takes_decision):
            problems.append((path, f"automatic action '{a.name}' cannot need a reason or a decision: nobody gives one"))
    cycle = _automatic_cycle(wf)
    if cycle:
        problems.append(("$.actions", f"automatic actions form a cycle: {' -> '.join(cycle)}"))
    for j, st in enumerate(wf.create_statuses):
        if st not in names:
            problems.append((f"$.create_statuses[{j}]", f"create_statuses names unknown status '{st}'"))
        elif wf.is_final(st):
            problems.append((f"$.create_statuses[{j}]", f"a case cannot be created in the final status '{st}'"))
    if wf.children.on_parent_final not in (WITHDRAW, KEEP):
        problems.append(
            ("$.children.on_parent_final", f"unknown policy '{wf.children.on_parent_final}' ({WITHDRAW} or {KEEP})")
        )
    problems += children_problems(wf)
    if wf.initial in names:
        reachable = reachable_statuses(wf)
        for i, name in enumerate(names):
            if name not in reachable:
                problems.append((f"$.statuses[{i}]", f"status '{name}' is unreachable from '{wf.initial}'"))
    problems += _routine_lint(wf, wf.routines)
    return problems


def children_problems(wf: Workflow) -> list[tuple[str, str]]:
    """What is wrong with the workflow's for_each (children made from data), as (JSON path, message)."""
    fe = wf.children.for_each
    if fe is None:
        return []
    import re

    from . import conditions

    path = "$.children.for_each"
    problems: list[tuple[str, str]] = []

    def expression(where: str, text: str) -> None:
        problem = conditions.problem(text)
        if problem is not None:
            problems.append((where, f"'{text}': {problem}"))

    expression(f"{path}.items", fe.items)
    for j, status in enumerate(fe.on):
        if wf.status(status) is None:
            problems.append((f"{path}.on[{j}]", f"unknown status '{status}' ({', '.join(wf.status_names)})"))
        elif wf.is_final(status):
            problems.append((f"{path}.on[{j}]", f"'{status}' is final: a final case starts no children"))
    if fe.block_is_template:
        name = fe.block.replace(INDEX, "1")
        problem = block_name_problem(name)
        if "{" in name or "}" in name:
            problem = "the only placeholder is {index}"
        if problem:
            problems.append((f"{path}.block", f"'{fe.block}' is not a block name template: {problem}"))
    elif re.search(r"\{\w+\}", fe.block):
        problems.append((f"{path}.block", f"'{fe.block}': the only placeholder is {INDEX}"))
    else:
        expression(f"{path}.block", fe.block)
    for field_name, text in fe.subject:
        if field_name not in SUBJECT_FIELDS:
            problems.append((f"{path}.subject.{field_name}", f"unknown subject field ({', '.join(SUBJECT_FIELDS)})"))
        expression(f"{path}.subject.{field_name}", text)
    expression(f"{path}.data", fe.data)
    if fe.result is not None:
        expression(f"{path}.result", fe.result)
    if "kyc" not in wf.block_kinds:
        problems.append((path, "for_each makes kyc blocks, and block_kinds does not include kyc"))
    return problems


def _condition_problems(path: str, name: str | None) -> list[tuple[str, str]]:
    """A guard's name, or else a JMESPath condition that must parse."""
    if name is None or name in GUARDS:
        return []
    from . import conditions

    problem = conditions.problem(name)
    if problem is None:
        return []
    return [(path, f"'{name}' is neither a guard ({', '.join(sorted(GUARDS))}) nor a condition: {problem}")]


def _automatic_cycle(wf: Workflow) -> list[str]:
    """Statuses that automatic actions alone could move a case around in a loop (empty: none).
    Conditions are not evaluated: a cycle their data could close is refused too."""
    edges: dict[str, list[str]] = {}
    for a in wf.actions:
        if a.automatic:
            for src in a.sources:
                edges.setdefault(src, []).extend(a.targets_from(src))
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for start in list(edges):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def warnings(wf: Workflow) -> list[tuple[str, str]]:
    """Things that are allowed but worth knowing, as (JSON path, message) pairs."""
    found: list[tuple[str, str]] = []
    protected = wf.protected_statuses
    for j, to in enumerate(wf.set_status.targets):
        if to in protected:
            guarded = ", ".join(a.name for a in wf.leading_into(to) if a.name in wf.four_eyes)
            found.append(
                (
                    f"$.set_status.to[{j}]",
                    f"set_status can reach '{to}', which four_eyes protects ({guarded}); "
                    "a direct status change there follows the four-eyes rule too",
                )
            )
    return found
