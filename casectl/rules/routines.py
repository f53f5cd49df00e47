"""Routines: what a workflow does by itself once a case has stayed in a status for a while.

Seed 004's "sequences of automated actions performed when a case reaches a
trigger point", Request Tracker's rt-crontool and Marble's escalation, declared
in the workflow:

    {"name": "remind_subject", "in_status": "revisions", "after": "3d",
     "time": "business", "when": "data.channel == 'email'",
     "do": [{"email": {"to": ["{subject.email}"], "subject": "..."}},
            {"event": "remind"}, {"assign": {"team": "escalations"}},
            {"tag": "+stale"}, {"priority": "high"},
            {"activity": {"type": "chase_subject"}}, {"note": "reminded"}]}

A routine fires once per case per entry into one of its statuses, `after` that
long in it (calendar time, or the SLA's business hours with "time": "business",
where a day is one working day), when its optional condition holds. Each step
goes through the kernel and the rules as an agent's command would
(services/routines.py runs them). Pure: this module only declares and lints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CALENDAR, BUSINESS = "calendar", "business"
TIMES = (CALENDAR, BUSINESS)
PRIORITIES = ("low", "normal", "high", "urgent")
# What a step may do, one key each (schemas/workflow.schema.json, $defs.routine_step).
STEPS = ("email", "webhook", "event", "assign", "tag", "priority", "activity", "note")
# Keys that may stand beside a step's own key.
STEP_OPTIONS = {"event": ("reason", "decision")}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_AFTER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TAG = re.compile(r"^[+-]?[^\s,+-][^\s,]*$")


@dataclass(frozen=True, kw_only=True)
class Routine:
    name: str
    statuses: tuple[str, ...]
    after: str
    time: str = CALENDAR
    when: str | None = None
    label: str = ""
    steps: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def amount(self) -> tuple[float, str]:
        """`after` as (number, unit): (3.0, 'd'). Assumes a linted routine."""
        m = _AFTER.match(self.after)
        assert m is not None, self.after
        return float(m.group(1)), m.group(2)

    @property
    def calendar_seconds(self) -> int:
        """`after` in wall-clock seconds: the least time any routine of this `after` waits
        (business time runs no faster than the calendar)."""
        n, unit = self.amount
        return int(n * _UNITS[unit])


def step_kind(step: Mapping[str, Any]) -> str | None:
    """The step's own key (STEPS), or None when it has none or several."""
    kinds = [k for k in step if k in STEPS]
    return kinds[0] if len(kinds) == 1 else None


def routine_from_dict(d: Mapping[str, Any]) -> Routine:
    statuses = d.get("in_status", ())
    return Routine(
        name=d["name"],
        statuses=(statuses,) if isinstance(statuses, str) else tuple(statuses),
        after=str(d.get("after", "")),
        time=d.get("time", CALENDAR),
        when=d.get("when"),
        label=d.get("label", ""),
        steps=tuple(dict(s) for s in d.get("do", ())),
    )


def routine_to_dict(r: Routine) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": r.name,
        "label": r.label,
        "in_status": r.statuses[0] if len(r.statuses) == 1 else list(r.statuses),
        "after": r.after,
        "time": r.time if r.time != CALENDAR else None,
        "when": r.when,
        "do": [dict(s) for s in r.steps],
    }
    return {k: v for k, v in d.items() if v not in (None, "")}


def lint(wf: Any, routines: tuple[Routine, ...]) -> list[tuple[str, str]]:
    """(JSON path, problem) for each routine of `wf` that could never run as written."""
    from . import conditions

    problems: list[tuple[str, str]] = []
    names = wf.status_names
    seen: set[str] = set()
    for i, r in enumerate(routines):
        path = f"$.routines[{i}]"
        if not _NAME.match(r.name):
            problems.append((f"{path}.name", f"'{r.name}' is not a name (lower-case letters, digits and _)"))
        elif r.name in seen:
            problems.append((f"{path}.name", f"routine '{r.name}' is defined twice"))
        seen.add(r.name)
        if not r.statuses:
            problems.append((f"{path}.in_status", "a routine names the status (or statuses) it waits in"))
        for j, s in enumerate(r.statuses):
            if s not in names:
                where = f"{path}.in_status" + (f"[{j}]" if len(r.statuses) > 1 else "")
                problems.append((where, f"routine '{r.name}' waits in unknown status '{s}'"))
        m = _AFTER.match(r.after)
        if not m or float(m.group(1)) <= 0:
            problems.append((f"{path}.after", f"'{r.after}' is not a duration like 30m, 24h, 3d or 2w"))
        if r.time not in TIMES:
            problems.append((f"{path}.time", f"unknown time '{r.time}' ({', '.join(TIMES)})"))
        elif r.time == BUSINESS and not (wf.sla and wf.sla.get("business_hours")):
            problems.append((f"{path}.time", "business time needs the workflow's sla.business_hours (or say calendar)"))
        if r.when is not None:
            problem = conditions.problem(r.when)
            if problem:
                problems.append((f"{path}.when", problem))
        if not r.steps:
            problems.append((f"{path}.do", f"routine '{r.name}' does nothing: give at least one step"))
        for j, step in enumerate(r.steps):
            problems += _step_problems(wf, r, f"{path}.do[{j}]", step)
    return problems


def _step_problems(wf: Any, r: Routine, path: str, step: Mapping[str, Any]) -> list[tuple[str, str]]:
    kind = step_kind(step)
    if kind is None:
        return [(path, f"a step has exactly one of {', '.join(STEPS)}")]
    extra = [k for k in step if k != kind and k not in STEP_OPTIONS.get(kind, ())]
    if extra:
        return [(f"{path}.{extra[0]}", f"a {kind} step takes no '{extra[0]}'")]
    value = step[kind]
    where = f"{path}.{kind}"
    if kind == "event":
        action = wf.action(value) if isinstance(value, str) else None
        if action is None:
            return [(where, f"no action '{value}' in workflow {wf.name}")]
        if not any(s in action.sources for s in r.statuses):
            return [(where, f"action '{value}' starts from none of {', '.join(r.statuses)}: it could never fire")]
        if action.reason_required and not step.get("reason"):
            return [(where, f"action '{value}' needs a reason: give the step a \"reason\"")]
        if action.takes_decision and step.get("decision") not in wf.decisions:
            return [(where, f"action '{value}' needs a decision: one of {', '.join(wf.decisions)}")]
    elif kind == "priority":
        if value not in PRIORITIES:
            return [(where, f"'{value}' is not a priority ({', '.join(PRIORITIES)})")]
    elif kind == "tag":
        tags = [value] if isinstance(value, str) else value
        bad = [t for t in tags if not isinstance(t, str) or not _TAG.match(t)]
        if not tags or bad:
            return [(where, f"'{bad[0] if bad else ''}' is not +TAG or -TAG (a tag is one word, no commas)")]
    elif kind == "assign":
        people = {"assignee": value} if isinstance(value, str) else value
        if not isinstance(people, Mapping) or not people or set(people) - {"assignee", "team"}:
            return [(where, 'assign takes a name, or {"assignee": NAME, "team": TEAM} (null clears one)')]
        for key, v in people.items():
            if v is not None and (not isinstance(v, str) or not v.strip() or any(c.isspace() for c in v)):
                return [(f"{where}.{key}" if not isinstance(value, str) else where, f"'{v}' must be one word")]
    elif kind == "activity":
        if not isinstance(value, Mapping) or not re.match(r"^[a-z][a-z0-9_]*$", str(value.get("type", ""))):
            return [(where, 'an activity step gives {"type": NAME} (lower-case letters, digits and _)')]
    elif kind == "note":
        if not isinstance(value, str) or not value.strip():
            return [(where, "a note step gives the note's text")]
    elif kind in ("email", "webhook"):
        if not isinstance(value, Mapping):
            return [(where, f"a {kind} step gives the {kind} as an object, like an effect")]
        if kind == "email" and not value.get("to"):
            return [(f"{where}.to", "an email step names its recipients")]
        if kind == "webhook" and not value.get("url"):
            return [(f"{where}.url", "a webhook step gives its url")]
    return []
