"""Workflows to and from their JSON form (schemas/workflow.schema.json).

The dictionaries given to `workflow_from_dict` must already have passed the
JSON Schema; semantic checks are `model.lint`.
"""

from __future__ import annotations

from typing import Any

from .model import (
    ACTIVITY_STATES,
    AGENT,
    BLOCK_KINDS,
    Action,
    ActivityRequirement,
    ChildPolicy,
    Message,
    Route,
    SetStatusRule,
    Status,
    Workflow,
)
from .routines import routine_from_dict, routine_to_dict


def _routes(to: Any) -> tuple[Route, ...]:
    """`"to": "status"`, a list of routes, or a map from a source status to its target(s):
    `{"pending": "open", "open": [{"to": "closed", "when": "..."}, {"to": "open"}]}`."""
    if isinstance(to, str):
        return (Route(to=to),)
    if isinstance(to, dict):
        routes: list[Route] = []
        for src, target in to.items():
            routes += [Route(to=r.to, when=r.when, sources=(src,)) for r in _routes(target)]
        return tuple(routes)
    return tuple(Route(to=r["to"], when=r.get("when"), sources=tuple(r.get("from", ()))) for r in to)


def _sources(a: dict[str, Any]) -> tuple[str, ...]:
    """An action's `from`; without one, the statuses its routes leave (a per-status map)."""
    if "from" in a:
        return tuple(a["from"])
    return tuple(dict.fromkeys(src for r in _routes(a["to"]) for src in r.sources))


def workflow_from_dict(d: dict[str, Any]) -> Workflow:
    statuses = tuple(
        Status(
            name=s["name"],
            label=s.get("label", ""),
            final=bool(s.get("final", False)),
            waiting=bool(s.get("waiting", False)),
            description=s.get("description", ""),
            category=s.get("category", ""),
        )
        for s in d["statuses"]
    )
    actions = tuple(
        Action(
            name=a["name"],
            sources=_sources(a),
            routes=_routes(a["to"]),
            trigger=a.get("trigger", AGENT),
            guards=tuple(a.get("guards", ())),
            label=a.get("label", ""),
            reason_required=bool(a.get("reason_required", False)),
            decision=a.get("decision"),
            takes_decision=bool(a.get("takes_decision", False)),
            block_moves=tuple(tuple(m) for m in a.get("block_moves", ())),
            messages=tuple(Message(kind=m) for m in a.get("messages", ())),
            aliases=tuple(a.get("aliases", ())),
            roles=tuple(a.get("roles", ())),
            reopens=bool(a.get("reopens", False)),
            effects=tuple(a.get("effects", ())),
        )
        for a in d.get("actions", ())
    )
    set_status = d.get("set_status") or {}
    return Workflow(
        name=d["name"],
        version=int(d.get("version", 1)),
        title=d.get("title", ""),
        description=d.get("description", ""),
        statuses=statuses,
        initial=d["initial"],
        actions=actions,
        block_kinds=tuple(d.get("block_kinds", [k.name for k in BLOCK_KINDS])),
        requirements=tuple(
            ActivityRequirement(
                type=r["type"], label=r.get("label", ""), team=r.get("team"), config=dict(r.get("config", {}))
            )
            for r in d.get("requirements", ())
        ),
        activity_states=tuple(d.get("activity_states", ACTIVITY_STATES)),
        decisions=tuple(d.get("decisions", ("reviewed",))),
        set_status=SetStatusRule(sources=tuple(set_status.get("from", ())), targets=tuple(set_status.get("to", ()))),
        four_eyes=tuple(d.get("four_eyes", ())),
        create_statuses=tuple(d.get("create_statuses", ())),
        children=ChildPolicy.from_dict(d.get("children") or {}),
        sla=d.get("sla"),
        effects=tuple(d.get("effects", ())),
        routines=tuple(routine_from_dict(r) for r in d.get("routines", ())),
    )


def _drop_defaults(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, False, "", (), [], {})}


def workflow_to_dict(wf: Workflow) -> dict[str, Any]:
    """The JSON form; `workflow_from_dict(workflow_to_dict(wf)) == wf`."""
    actions = []
    for a in wf.actions:
        to: Any = (
            a.routes[0].to
            if len(a.routes) == 1 and a.routes[0].when is None and not a.routes[0].sources
            else [_drop_defaults({"to": r.to, "when": r.when, "from": list(r.sources)}) for r in a.routes]
        )
        actions.append(
            _drop_defaults(
                {
                    "name": a.name,
                    "label": a.label,
                    "from": list(a.sources),
                    "to": to,
                    "trigger": a.trigger if a.trigger != AGENT else None,
                    "guards": list(a.guards),
                    "reason_required": a.reason_required,
                    "decision": a.decision,
                    "takes_decision": a.takes_decision,
                    "block_moves": [list(m) for m in a.block_moves],
                    "messages": [m.kind for m in a.messages],
                    "aliases": list(a.aliases),
                    "roles": list(a.roles),
                    "reopens": a.reopens,
                    "effects": [dict(e) for e in a.effects],
                }
            )
        )
    d: dict[str, Any] = {
        "name": wf.name,
        "version": wf.version,
        "title": wf.title,
        "description": wf.description,
        "initial": wf.initial,
        "statuses": [
            _drop_defaults(
                {
                    "name": s.name,
                    "label": s.label,
                    "final": s.final,
                    "waiting": s.waiting,
                    "description": s.description,
                    "category": s.category,
                }
            )
            for s in wf.statuses
        ],
        "actions": actions,
        "block_kinds": list(wf.block_kinds),
        "requirements": [
            _drop_defaults({"type": r.type, "label": r.label, "team": r.team, "config": dict(r.config)})
            for r in wf.requirements
        ],
        "activity_states": list(wf.activity_states),
        "decisions": list(wf.decisions),
        "set_status": _drop_defaults({"from": list(wf.set_status.sources), "to": list(wf.set_status.targets)}),
        "four_eyes": list(wf.four_eyes),
        "create_statuses": list(wf.create_statuses),
        "children": wf.children.to_dict(),
        "sla": dict(wf.sla) if wf.sla else None,
        "effects": [dict(e) for e in wf.effects],
        "routines": [routine_to_dict(r) for r in wf.routines],
    }
    keep = {"name", "version", "initial", "statuses", "actions"}
    return {k: v for k, v in d.items() if k in keep or v not in (None, "", [], {})}
