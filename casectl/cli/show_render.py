"""How `show` prints the parts of a case that the services hand over as data.

Each part (blocks, KYC children, activities, SLA, notes, appointments,
deliveries) arrives as the same JSON that `show --json` prints; here it
becomes a titled list of lines for a person, each shown `printable` (a
control character in a note or a name never reaches the terminal raw). An
empty part prints nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..services import sla
from .output import printable


def _blocks(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        f"{b['name']:<16} {b['kind']:<13} {b['status_label']:<24} {b['summary']}"
        + (f" (decided by {b['decided_by']})" if b["decided_by"] else "")
        for b in blocks
    ]


def _children(kids: list[dict[str, Any]]) -> list[str]:
    return [
        f"{k['id']:<6} {k['block'] or '(superseded)':<16} {k['status']:<22} "
        f"{k['subject_name'] or k['subject_email'] or ''}".rstrip()
        for k in kids
    ]


def _activities(acts: list[dict[str, Any]]) -> list[str]:
    lines = []
    for a in acts:
        who = (
            f"assignee {a['assignee']}" if a["assignee"] else "",
            f"team {a['team']}" if a["team"] else "",
            f"decision {a['decision']}" if a["decision"] else "undecided",
        )
        lines.append(f"{a['id']:<6} {a['type']:<20} {a['state']:<26} " + " ".join(x for x in who if x))
    return lines


def _sla(s: dict[str, Any]) -> list[str]:
    state = s["state"]
    if state == "paused":
        return [
            f"paused since {s['paused_at']} (waiting on the subject); "
            f"{sla.describe(s['remaining_seconds'] or 0)} of SLA time left"
        ]
    if state == "overdue":
        return [f"BREACHED: due {s['due_at']}, overdue by {sla.describe(-s['remaining_seconds'])}"]
    if state == "on_track":
        return [f"due {s['due_at']} (in {sla.describe(s['remaining_seconds'])})"]
    if state == "breached":
        return [f"BREACHED: decided after it was due ({s['due_at']})"]
    return [f"met: decided before it was due ({s['due_at']})"]


def _notes(notes: list[dict[str, Any]]) -> list[str]:
    return [f"{n['id']} {n['at']} {n['actor']}{' (private)' if n['private'] else ''}: {n['text']}" for n in notes]


def _appointments(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['id']} {r['starts_at']} {r['title']}" + (f" with {r['with']}" if r["with"] else "") for r in rows]


def _payments(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['event']} {r['at']} {r['amount']} {r['currency']} by {r['by']}"
        + (f", ref {r['reference']}" if r["reference"] else "")
        + f" (recorded by {r['actor']})"
        for r in rows
    ]


def _paid_title(rows: list[dict[str, Any]]) -> str:
    from ..services.payments import paid_text

    return f"payments (paid {paid_text(rows)})"


def _deliveries(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        line = f"{r['id']}  {r['kind']} {r['what'] or ''} -> {r['target'] or '?'}: {r['status']}"
        if r["status"] != "delivered" and r["attempts"]:
            line += f" after {r['attempts']} attempt(s)"
        if r["last_error"] and r["status"] != "delivered":
            line += f" — {r['last_error']}"
        lines.append(line)
    return lines


def _routines(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        when = {"waiting": "due", "due": "due since", "fired": "fired; was due", "failed": "failed; due"}[r["state"]]
        line = f"{r['routine']} (after {r['after']}{', business time' if r['time'] == 'business' else ''}): {when} {r['due_at']}"
        if r["state"] == "failed":
            line += f" — attempt {r['attempts']}: {r['last_error']}"
        lines.append(line)
    return lines


# key -> (title, or a function of the part giving it; lines)
RENDERERS: dict[str, tuple[Callable[[Any], str], Callable[[Any], list[str]]]] = {
    "blocks": (lambda _: "blocks", _blocks),
    "children": (lambda _: "KYC child cases", _children),
    "activities": (lambda _: "activities", _activities),
    "sla": (lambda _: "SLA", _sla),
    "notes": (lambda notes: f"notes ({len(notes)})", _notes),
    "appointments": (lambda rows: f"appointments ({len(rows)})", _appointments),
    "payments": (_paid_title, _payments),
    "deliveries": (lambda _: "Deliveries", _deliveries),
    "routines": (lambda _: "Routines", _routines),
}


def sections(parts: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(title, lines) for each non-empty part, in the order the services gave them."""
    for key, value in parts.items():
        render = RENDERERS.get(key)
        if render is None or not value:
            continue
        title, lines = render
        body = lines(value)
        if body:
            yield printable(title(value)), [printable(line) for line in body]
