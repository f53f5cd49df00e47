"""Working the queue: assignment, take, tags, notes and the SLA clock.

Each use case has an `*_in` form that runs inside the caller's transaction
(so `act -`, `assign -`, `tag -` and `note -` can apply many in one) and a
plain form that opens its own.

Private notes: their text lives only in the `notes` table. The event that
records a private note carries its id and "private", never its text, so an
export or a digest that prints events cannot leak it; `notes()` hands the
text out only with include_private=True.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .. import ids, rules
from ..errors import InvalidInput, UsageError
from ..filters import CaseFilter
from ..rules import Workflow
from ..store import cases as case_store
from ..store import events as event_store
from ..store import queue as queue_store
from ..store import rollback, write
from ..store import workflows as wf_store
from ..timeutil import iso, parse_time


def sla_state(case: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """Where a case stands against its SLA (None when its workflow has none)."""
    due, paused = case.get("due_at"), case.get("sla_paused_at")
    if not due and not paused:
        return None
    out: dict[str, Any] = {
        "due_at": due,
        "paused": bool(paused),
        "paused_at": paused,
        "remaining_seconds": None,
        "breached": False,
    }
    if case.get("final"):
        late = bool(due and case.get("decided_at") and case["decided_at"] > due)
        out.update(state="breached" if late else "met", breached=late)
    elif paused:
        out.update(state="paused", remaining_seconds=case.get("sla_remaining"))
    elif due:
        left = int((parse_time(due) - now).total_seconds())
        out.update(remaining_seconds=left, state="overdue" if left < 0 else "on_track", breached=left < 0)
    return out


def show_parts(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None, now: datetime) -> dict:
    """Parts of `show`: the SLA and every note (agents see private notes too)."""
    parts: dict[str, Any] = {}
    state = sla_state(case, now)
    if state is not None:
        parts["sla"] = state
    parts["notes"] = [note_row(n) for n in notes(conn, case["id"], include_private=True)]
    return parts


# --- notes -----------------------------------------------------------------------


def notes(conn: sqlite3.Connection, case_ids: int | Iterable[int], *, include_private: bool = False) -> list[dict]:
    """Notes of one case or several, oldest first. Exports, reports and digests
    call this with include_private=False unless the user asked for private ones."""
    wanted = [case_ids] if isinstance(case_ids, int) else list(case_ids)
    return queue_store.notes(conn, wanted, include_private=include_private)


def note_row(n: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ids.fmt("note", n["id"]),
        "case": ids.fmt("case", n["case_id"]),
        "at": n["at"],
        "actor": n["actor"],
        "private": n["private"],
        "text": n["text"],
    }


def note_in(
    conn: sqlite3.Connection, case: dict[str, Any], text: str, *, private: bool, actor: str, now: datetime
) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("note: the text is empty; give it as an argument or on stdin")
    at = iso(now)
    note_no = queue_store.next_note_id(conn)  # the event names the note it records
    ref = ids.fmt("note", note_no)
    data: dict[str, Any] = {"note": ref, "private": private}
    if private:
        data["summary"] = f"private note {ref}"
    else:
        data["text"] = text
        data["summary"] = text if len(text) <= 80 else text[:77] + "..."
    event_id = event_store.append(conn, case["id"], at=at, actor=actor, kind="note", data=data)
    note_id = queue_store.add_note(conn, case["id"], at=at, actor=actor, text=text, private=private, event_id=event_id)
    assert note_id == note_no
    return {"id": ids.fmt("case", case["id"]), "note": ref, "private": private, "event": ids.fmt("event", event_id)}


# --- assignment ------------------------------------------------------------------


def assign_in(
    conn: sqlite3.Connection,
    case: dict[str, Any],
    *,
    assignee: str | None = None,
    team: str | None = None,
    clear_assignee: bool = False,
    clear_team: bool = False,
    actor: str,
    now: datetime,
    action: str = "assign",
) -> dict[str, Any]:
    for what, value in (("assignee", assignee), ("team", team)):
        if value is not None and (not value.strip() or any(ch.isspace() for ch in value)):
            raise InvalidInput(f"{what}: '{value}' must be one word with no spaces")
    changes: dict[str, Any] = {}
    if assignee is not None or clear_assignee:
        changes["assignee"] = None if clear_assignee else assignee
    if team is not None or clear_team:
        changes["team"] = None if clear_team else team
    changes = {k: v for k, v in changes.items() if case.get(k) != v}
    cid = ids.fmt("case", case["id"])
    result = {"id": cid, "changes": {k: [case.get(k), v] for k, v in changes.items()}, "event": None}
    if not changes:
        return result
    at = iso(now)
    case_store.update(conn, case["id"], case["version"], changes, at=at)
    summary = ", ".join(f"{k}: {case.get(k) or '-'} -> {v or '-'}" for k, v in changes.items())
    event_id = event_store.append(
        conn,
        case["id"],
        at=at,
        actor=actor,
        kind="assigned",
        action=action,
        data={**result["changes"], "summary": summary},
    )
    result["event"] = ids.fmt("event", event_id)
    return result


def priority_in(
    conn: sqlite3.Connection, case: dict[str, Any], priority: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Set the case's priority, recorded in its history (nothing changes when it already has it)."""
    from .validate import PRIORITIES

    if priority not in PRIORITIES:
        raise InvalidInput(f"priority: '{priority}' is not one of {', '.join(PRIORITIES)}")
    cid = ids.fmt("case", case["id"])
    result: dict[str, Any] = {"id": cid, "priority": priority, "previous": case.get("priority"), "event": None}
    if case.get("priority") == priority:
        return result
    at = iso(now)
    case_store.update(conn, case["id"], case["version"], {"priority": priority}, at=at)
    event_id = event_store.append(
        conn,
        case["id"],
        at=at,
        actor=actor,
        kind="priority",
        data={
            "priority": [case.get("priority"), priority],
            "summary": f"priority {case.get('priority')} -> {priority}",
        },
    )
    result["event"] = ids.fmt("event", event_id)
    return result


def _actionable_statuses(conn: sqlite3.Connection) -> set[str]:
    """Statuses in which some workflow version offers an agent action (a cheap pre-filter)."""
    found: set[str] = set()
    workflows = list(rules.BUILTIN.values())
    for row in wf_store.latest_all(conn):
        workflows += [rules.workflow_from_dict(v["definition"]) for v in wf_store.versions(conn, row["name"])]
    for wf in workflows:
        for a in wf.actions:
            if a.trigger == rules.AGENT:
                found.update(a.sources)
    return found


# The order `take` serves by default: the most urgent priority, then the soonest SLA due
# time (cases without one after), then the oldest. `--sort` names the keys to use instead.
TAKE_ORDER = ("priority", "due", "age")
TAKE_KEYS = {
    "priority": "urgent first",
    "due": "soonest SLA due time first, cases without one last",
    "age": "oldest first",
}


def take_order(text: str | None) -> tuple[str, ...]:
    """`--sort priority,due` -> the queue's keys; the oldest case still breaks a tie."""
    if text is None:
        return TAKE_ORDER
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    aliases = {"created": "age", "oldest": "age", "sla": "due"}
    keys = [aliases.get(k, k) for k in keys]
    unknown = [k for k in keys if k not in TAKE_KEYS]
    if unknown or not keys:
        raise UsageError(
            f"--sort: unknown key '{', '.join(unknown) or text}'; available: "
            + "; ".join(f"{k} ({what})" for k, what in TAKE_KEYS.items())
            + " (comma-separated, e.g. due,priority)"
        )
    if len(set(keys)) != len(keys):
        raise UsageError(f"--sort: '{text}' names a key twice")
    return tuple(keys) + (() if "age" in keys else ("age",))


def take(
    conn: sqlite3.Connection,
    f: CaseFilter,
    *,
    actor: str,
    now: datetime,
    order: tuple[str, ...] = TAKE_ORDER,
) -> dict[str, Any] | None:
    """Claim the first unassigned open case matching `f`, in `order` (by default the most
    urgent, then the soonest due, then the oldest), on which the actor may perform at least
    one agent action now; returns it.

    BEGIN IMMEDIATE serialises two takers, and the version check on the update
    means a case can never be handed to both.
    """
    from . import lifecycle
    from .validate import PRIORITIES

    with write(conn):
        statuses = _actionable_statuses(conn)
        if f.statuses:
            statuses &= set(f.statuses)
        if not statuses:
            return None  # no status in this filter offers an agent action
        queue_filter = CaseFilter(**{**f.__dict__, "statuses": tuple(sorted(statuses))})
        levels = tuple(reversed(PRIORITIES))  # most urgent first
        for case in queue_store.queue(conn, queue_filter, order=order, levels=levels):
            wf = lifecycle.workflow_of(conn, case)
            if not rules.allowed_actions(wf, lifecycle.state_of(conn, case, actor, wf=wf)):
                continue
            assign_in(conn, case, assignee=actor, actor=actor, now=now, action="take")
            return case_store.fetch(conn, case["id"])
    return None


# --- tags ------------------------------------------------------------------------


def parse_tag_changes(specs: list[str]) -> tuple[list[str], list[str]]:
    """['+vip', '-old', 'new'] -> (add, remove). A bare tag is added."""
    add: list[str] = []
    remove: list[str] = []
    for spec in specs:
        sign, name = (spec[0], spec[1:]) if spec[:1] and spec[0] in "+-" else ("+", spec)
        name = name.strip()
        if not name or "," in name or any(ch.isspace() for ch in name):
            raise InvalidInput(f"tag: '{spec}' is not +TAG or -TAG (a tag is one word, no commas)")
        (add if sign == "+" else remove).append(name)
    both = sorted(set(add) & set(remove))
    if both:
        raise InvalidInput(f"tag: {', '.join(both)} is both added and removed")
    if not add and not remove:
        raise InvalidInput("tag: give at least one +TAG or -TAG")
    return add, remove


def tag_in(
    conn: sqlite3.Connection, case: dict[str, Any], add: list[str], remove: list[str], *, actor: str, now: datetime
) -> dict[str, Any]:
    have = set(case.get("tags") or [])
    added = sorted(set(add) - have)
    removed = sorted(set(remove) & have)
    result = {
        "id": ids.fmt("case", case["id"]),
        "added": added,
        "removed": removed,
        "tags": sorted((have | set(added)) - set(removed)),
        "event": None,
    }
    if not added and not removed:
        return result
    at = iso(now)
    case_store.set_tags(conn, case["id"], add=added, remove=removed)
    case_store.update(conn, case["id"], case["version"], {}, at=at)
    summary = " ".join([f"+{t}" for t in added] + [f"-{t}" for t in removed])
    event_id = event_store.append(
        conn,
        case["id"],
        at=at,
        actor=actor,
        kind="tagged",
        data={"added": added, "removed": removed, "summary": summary},
    )
    result["event"] = ids.fmt("event", event_id)
    return result


# --- one case, its own transaction -------------------------------------------------


def apply_one(conn: sqlite3.Connection, id_or_ref: str, fn, dry_run: bool = False) -> dict[str, Any]:
    """fn(case) in its own transaction; rolled back after the fact with dry_run."""
    from . import lifecycle

    with write(conn):
        result = fn(lifecycle.load(conn, id_or_ref))
        if dry_run:
            rollback(conn)
        return result


def assign(conn, id_or_ref: str, *, actor: str, now: datetime, dry_run: bool = False, **kw) -> dict[str, Any]:
    return apply_one(conn, id_or_ref, lambda c: assign_in(conn, c, actor=actor, now=now, **kw), dry_run)


def tag(
    conn, id_or_ref: str, add: list[str], remove: list[str], *, actor: str, now: datetime, dry_run: bool = False
) -> dict[str, Any]:
    return apply_one(conn, id_or_ref, lambda c: tag_in(conn, c, add, remove, actor=actor, now=now), dry_run)


def note(
    conn, id_or_ref: str, text: str, *, private: bool, actor: str, now: datetime, dry_run: bool = False
) -> dict[str, Any]:
    return apply_one(conn, id_or_ref, lambda c: note_in(conn, c, text, private=private, actor=actor, now=now), dry_run)
