"""Side effects of case changes, written to the outbox in the same transaction.

Three sources, all queued inside the transaction of the change that caused
them (so a crash can lose neither the change nor its messages):
- the action's declared effects (rules.Action.effects),
- the workflow's effects (rules.Workflow.effects), filtered by their `on`
  list: event types (case.created, case.status_changed, case.decided,
  case.action.NAME) or status names the case enters; default
  case.status_changed,
- webhook subscriptions kept in the database (`casectl hooks add`).

Kinds: webhook, email, crm (a call whose answer is not read) and http (a call
whose answer moves the case: integrations.py applies it when it is delivered;
its payload keeps the effect's name, its response mapping and its events).

Templates ({case.id}, {subject.name}, {data.amount} ...) are filled from a
flat table of known fields: no attribute access, no expressions; unknown
placeholders stay as written so the author sees them. A case's values fill
a URL's path and query (percent-encoded), never its scheme, host or port;
a header's {env.VAR} references come from the template alone, so a case's
data can never name a secret.
"""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .. import fields, ids, rules
from ..rules import Workflow
from ..store import cases as case_store
from ..store import outbox as store
from ..timeutil import iso
from .records import Created, FollowUp, Transition

CREATED = "case.created"
STATUS_CHANGED = "case.status_changed"
DECIDED = "case.decided"
EVENT_TYPES = (CREATED, STATUS_CHANGED, DECIDED)
ACTION_PREFIX = "case.action."
_ACTION_TYPE = re.compile(r"^case\.action\.[a-z][a-z0-9_]*$")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)*)\}")


def valid_event_type(name: str) -> bool:
    return name == "*" or name in EVENT_TYPES or bool(_ACTION_TYPE.match(name))


# --- templates ------------------------------------------------------------------


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def template_fields(case: dict[str, Any], event: dict[str, Any]) -> dict[str, str]:
    """Every placeholder a template may use, as text."""
    f: dict[str, Any] = {
        "case.id": ids.fmt("case", case["id"]),
        "case.ref": case.get("ref"),
        "case.status": case.get("status"),
        "case.previous_status": event.get("from_status"),
        "case.workflow": case.get("workflow"),
        "case.decision": case.get("decision"),
        "case.reason": case.get("decision_reason"),
        "case.priority": case.get("priority"),
        "case.assignee": case.get("assignee"),
        "case.team": case.get("team"),
        "case.created_at": case.get("created_at"),
        "case.due_at": case.get("due_at"),
        "case.decided_at": case.get("decided_at"),
        "subject.name": case.get("subject_name"),
        "subject.email": case.get("subject_email"),
        "subject.country": case.get("subject_country"),
        "subject.ref": case.get("subject_ref"),
        "event.id": ids.fmt("event", event.get("id")),
        "event.type": event.get("type"),
        "event.time": event.get("time"),
        "event.action": event.get("action"),
        "event.reason": event.get("reason"),
    }
    for scope in ("data", "registry_data"):
        for key, value in (case.get(scope) or {}).items():
            if _scalar(value):
                f[f"{scope}.{key}"] = value
            elif isinstance(value, dict):
                for k2, v2 in value.items():
                    if _scalar(v2):
                        f[f"{scope}.{key}.{k2}"] = v2
    return {k: ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in f.items()}


def render(template: str, fields: dict[str, str], *, escape=None) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in fields:
            return m.group(0)  # unknown (or {env.VAR}, resolved only when sending)
        return escape(fields[name]) if escape else fields[name]

    return _FIELD.sub(sub, template)


def render_value(value: Any, fields: dict[str, str]) -> Any:
    """A JSON body template: every string inside it rendered."""
    if isinstance(value, str):
        return render(value, fields)
    if isinstance(value, list):
        return [render_value(v, fields) for v in value]
    if isinstance(value, dict):
        return {str(k): render_value(v, fields) for k, v in value.items()}
    return value


_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")  # scheme://user@host:port, as written


def _url(template: str, fields: dict[str, str]) -> str:
    """The URL with the case's values in its path and query; its origin is left as written
    (a placeholder there stays one, and delivery refuses the target)."""
    m = _ORIGIN.match(template)
    origin, rest = (m.group(0), template[m.end() :]) if m else ("", template)
    return origin + render(rest, fields, escape=lambda s: quote(s, safe=""))


def _header(template: str, fields: dict[str, str]) -> list[str | dict[str, str]]:
    """A header template with its text filled and its {env.VAR} references kept apart (notify.header_parts)."""
    from .notify import header_parts

    return [render(p, fields) if isinstance(p, str) else p for p in header_parts(template)]


def _places(wf: Workflow) -> list[tuple[str, tuple[Any, ...]]]:
    """Where a workflow declares effects: (JSON path of the list, the effects)."""
    places: list[tuple[str, tuple[Any, ...]]] = [
        (f"$.actions[{i}].effects", a.effects) for i, a in enumerate(wf.actions)
    ]
    places.append(("$.effects", wf.effects))
    return places


def target_problems(wf: Workflow) -> list[tuple[str, str]]:
    """Effects whose URL can never be a target, as (JSON path, message): not http(s), a template in
    its scheme, host or port, credentials, a link-local or metadata address. Private addresses
    are judged when sending, against the configuration of the machine that sends."""
    from .notify import target_problem

    problems: list[tuple[str, str]] = []
    for where, effects in _places(wf):
        for j, effect in enumerate(effects):
            if effect.get("type") in ("webhook", "crm", "http"):
                url = str(effect.get("url") or "")
                problem = target_problem(url, None, "url")
                if problem:
                    problems.append((f"{where}[{j}].url", problem))
    return problems


_BLOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # as a block added by hand (children._NAME)


def effect_problems(wf: Workflow) -> list[tuple[str, str]]:
    """What makes an http effect unusable, as (JSON path, message): no name, events that are not
    system events of this workflow, a response mapping that is not JMESPath, a block it could
    never write."""
    from ..rules import blocks as block_rules

    problems: list[tuple[str, str]] = []
    for where, effects in _places(wf):
        for j, effect in enumerate(effects):
            if effect.get("type") != "http":
                continue
            at = f"{where}[{j}]"
            if not effect.get("name"):
                problems.append((f"{at}.name", "an http effect needs a name: the case's history names the call by it"))
            on = effect.get("on")
            if where == "$.effects" and (not on or "*" in on):
                # Its events change the status: on every change, each answer would ask again.
                problems.append(
                    (
                        f"{at}.on",
                        "say when an http effect calls: the statuses it is made on entering (or event types), "
                        'e.g. "on": ["collection_flow"]; not every status change',
                    )
                )
            for key in ("success_event", "error_event"):
                event = effect.get(key)
                if event is None:
                    continue
                action = wf.action(event)
                if action is None:
                    events = ", ".join(a.name for a in wf.actions if a.answers_to(rules.SYSTEM)) or "none"
                    problems.append(
                        (f"{at}.{key}", f"no action '{event}' in workflow {wf.name} (its system events: {events})")
                    )
                elif not action.answers_to(rules.SYSTEM):
                    problems.append(
                        (
                            f"{at}.{key}",
                            f"'{event}' is an agent action; an http effect fires its events as system events: "
                            'give the action "trigger": "system"',
                        )
                    )
            response = effect.get("response") or {}
            for key in ("registry_data", "data"):
                if key in response:
                    problem = _mapping_problem(response[key])
                    if problem:
                        problems.append((f"{at}.response.{key}", problem))
            block = response.get("block")
            if isinstance(block, dict):
                name = block.get("name")
                if not isinstance(name, str) or not _BLOCK_NAME.match(name):
                    problems.append((f"{at}.response.block.name", "a block name: letters, digits, _ . - (at most 64)"))
                elif name in block_rules.RESERVED_NAMES:
                    problems.append(
                        (
                            f"{at}.response.block.name",
                            f"'{name}' is the case's own data; map into it with response.data or "
                            "response.registry_data",
                        )
                    )
                problem = _mapping_problem(block.get("data"))
                if problem:
                    problems.append((f"{at}.response.block.data", problem))
                if block_rules.valid_kind(wf, "enriched"):
                    problems.append(
                        (
                            f"{at}.response.block",
                            f"the answer goes into an enriched block, and workflow {wf.name} has none: "
                            'add "enriched" to its block_kinds',
                        )
                    )
    return problems


def _mapping_problem(expression: Any) -> str | None:
    """Why a response mapping is not a JMESPath expression (rules/conditions.py compiles both)."""
    from ..rules import conditions

    if not isinstance(expression, str) or not expression.strip():
        return "an empty mapping: give a JMESPath expression over the answer, e.g. {name: company.name}"
    return conditions.problem(expression)


# --- what a message says -------------------------------------------------------------


case_body = fields.webhook_case


def webhook_body(case: dict[str, Any], event: dict[str, Any], event_type: str) -> dict[str, Any]:
    """Standard Webhooks' {type, timestamp, data}, plus the ids a receiver keys on."""
    return {
        "type": event_type,
        "timestamp": event["time"],
        "event_id": ids.fmt("event", event["id"]),
        "case_id": ids.fmt("case", case["id"]),
        "data": {
            "case": case_body(case),
            "action": event.get("action"),
            "from_status": event.get("from_status"),
            "to_status": event.get("to_status"),
            "decision": event.get("decision"),
            "reason": event.get("reason"),
        },
    }


def _enqueue_effect(
    conn: sqlite3.Connection, effect: dict[str, Any], case: dict[str, Any], event: dict[str, Any], event_type: str
) -> int | None:
    fields = template_fields(case, {**event, "type": event_type})
    kind = effect.get("type")
    common = dict(conn=conn, case_id=case["id"], event_id=event["id"], at=event["time"])
    if kind == "webhook":
        return store.enqueue(
            kind="webhook",
            target=_url(effect.get("url", ""), fields),
            payload={
                "type": event_type,
                "secret_env": effect.get("secret_env"),
                "body": webhook_body(case, event, event_type),
            },
            **common,
        )
    if kind == "email":
        to = [render(a, fields).strip() for a in effect.get("to", ())]
        subject = render(effect.get("subject") or "{case.id} is now {case.status}", fields)
        body = effect.get("body")
        text = render(
            body if isinstance(body, str) else "Case {case.id} ({subject.name}) is now {case.status}.", fields
        )
        page = render(effect["html"], fields, escape=html.escape) if effect.get("html") else None
        return store.enqueue(
            kind="email",
            target=", ".join(a for a in to if a),
            payload={
                "subject": subject,
                "text": text,
                "html": page,
                "template": "effect",
                "case": ids.fmt("case", case["id"]),
                "type": event_type,
            },
            **common,
        )
    if kind in ("crm", "http"):
        headers = {str(k): _header(str(v), fields) for k, v in (effect.get("headers") or {}).items()}
        body = effect.get("body")
        if body is not None:
            body = render_value(body, fields)
        elif kind == "crm":
            body = webhook_body(case, event, event_type)
        payload = {
            "method": effect.get("method") or ("POST" if kind == "crm" else "GET"),
            "headers": headers,
            "body": body,
            "secret_env": effect.get("secret_env"),
            "type": event_type,
        }
        if kind == "http":  # what applying its answer needs, as the workflow said it when the call was queued
            payload.update(
                name=effect.get("name"),
                response=dict(effect.get("response") or {}),
                success_event=effect.get("success_event"),
                error_event=effect.get("error_event"),
            )
        return store.enqueue(kind=kind, target=_url(effect.get("url", ""), fields), payload=payload, **common)
    return None


def _first_match(wanted: Iterable[str], types: list[str], to_status: str | None) -> str | None:
    """The most specific of `types` (in order) that `wanted` names; '*' takes the first."""
    wanted = set(wanted)
    for t in types:
        if "*" in wanted or t in wanted:
            return t
    if to_status and to_status in wanted:
        return types[0]
    return None


def _nothing_to_queue(wf: Workflow, hooks: list, action_effects: tuple = ()) -> bool:
    return not (hooks or wf.effects or action_effects)


def _dispatch(
    conn: sqlite3.Connection,
    *,
    case_id: int,
    wf: Workflow,
    types: list[str],
    event: dict[str, Any],
    action_effects: tuple = (),
) -> None:
    hooks = store.hooks(conn, workflow=wf.name)
    if _nothing_to_queue(wf, hooks, action_effects):
        return
    case = case_store.fetch(conn, case_id)
    if event.get("to_status") is None:
        event = {**event, "to_status": case["status"]}
    primary = types[0]
    for effect in action_effects:
        _enqueue_effect(conn, dict(effect), case, event, primary)
    for effect in wf.effects:
        on = effect.get("on") or [STATUS_CHANGED]
        t = _first_match(on, types, event.get("to_status") if primary != CREATED else None)
        if t:
            _enqueue_effect(conn, dict(effect), case, event, t)
    for hook in hooks:
        t = _first_match(hook["events"] or ["*"], types, None)
        if t:
            _enqueue_effect(
                conn, {"type": "webhook", "url": hook["url"], "secret_env": hook.get("secret_env")}, case, event, t
            )


def on_event(
    conn: sqlite3.Connection,
    event_type: str,
    *,
    case_id: int,
    wf: Workflow,
    event_id: int,
    action: str | None,
    now: datetime,
) -> None:
    """Queue the webhooks, emails and CRM calls subscribed to `event_type`."""
    event = {"id": event_id, "time": iso(now), "action": action, "from_status": None, "to_status": None}
    _dispatch(conn, case_id=case_id, wf=wf, types=[event_type], event=event)


def on_event_batch(
    conn: sqlite3.Connection, event_type: str, cases: Iterable[tuple[int, Workflow, int]], *, now: datetime
) -> None:
    """on_event (no action) for many cases (case_id, workflow, event_id) in order (`casectl import`).
    A workflow with no effects and no subscription queues nothing (as _dispatch decides): asked once
    per workflow, not once per case."""
    quiet: dict[tuple[str, int], bool] = {}
    for case_id, wf, event_id in cases:
        key = (wf.name, wf.version)
        if key not in quiet:
            quiet[key] = _nothing_to_queue(wf, store.hooks(conn, workflow=wf.name))
        if not quiet[key]:
            on_event(conn, event_type, case_id=case_id, wf=wf, event_id=event_id, action=None, now=now)


def quiet(conn: sqlite3.Connection, wf: Workflow) -> bool:
    """Whether a new case of `wf` queues nothing (no effects, no subscription): a batch asks once per workflow."""
    return _nothing_to_queue(wf, store.hooks(conn, workflow=wf.name))


def on_created(conn: sqlite3.Connection, record: Created) -> list[FollowUp]:
    """A follower of the kernel: queue what case.created is subscribed to."""
    on_event(
        conn, CREATED, case_id=record.case_id, wf=record.workflow, event_id=record.event_id, action=None, now=record.at
    )
    return []


def transition_types(
    action: str | None, from_status: str, to_status: str, decision: str | None, final: bool
) -> list[str]:
    """The event types one status change is, most specific first."""
    types = []
    if decision or final:
        types.append(DECIDED)
    types.append(STATUS_CHANGED)
    if action:
        types.append(ACTION_PREFIX + action)
    return types


def on_transition(conn: sqlite3.Connection, record: Transition) -> list[FollowUp]:
    """A follower of the kernel: queue the action's declared effects, the workflow's and the subscriptions'.

    Declared messages (e.g. the re-upload email) are queued by the child-case
    follower; they are delivered from the same outbox.
    """
    wf = record.workflow
    spec = wf.action(record.action) if record.action else None
    event = {
        "id": record.event_id,
        "time": iso(record.at),
        "action": record.action,
        "from_status": record.from_status,
        "to_status": record.to_status,
        "decision": record.decision,
        "reason": record.reason,
    }
    types = transition_types(
        record.action, record.from_status, record.to_status, record.decision, wf.is_final(record.to_status)
    )
    _dispatch(
        conn,
        case_id=record.case_id,
        wf=wf,
        types=types,
        event=event,
        action_effects=tuple(spec.effects) if spec else (),
    )
    return []


def queue(
    conn: sqlite3.Connection, effect: dict[str, Any], case_id: int, event: dict[str, Any], event_type: str
) -> int | None:
    """Queue one effect (a routine's email or webhook step) for the case, as of `event`; returns its outbox id."""
    return _enqueue_effect(conn, effect, case_store.fetch(conn, case_id), event, event_type)
