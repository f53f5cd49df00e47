"""What an http effect's answer does to its case (effects.py queues the call, outbox.py sends it).

Reading the answer is pure and happens with no lock held, right after it
arrives (`read`): the body is parsed as JSON and each of the effect's
`response` mappings (JMESPath) must yield an object; an answer that does not
fit is a permanent failure of the message. Applying it (`answered`) runs in
the transaction that marks the message delivered, so that a deliverer killed
in between applies nothing and the next one, sending again with the same
idempotency key, applies it once. It merges the mapped objects into the
case's registry data, data and an enriched block, records an `integration`
event (the effect, the HTTP status, which keys were mapped, never the body),
then fires the effect's success_event as a system event. When the message
gives up (`gave_up`, in the transaction that marks it failed) the failure is
recorded the same way and the error_event is fired. An event the case no
longer allows (it moved on, or it is final) is not fired, and the event says
so; nothing inside a final case changes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import ids, rules
from ..errors import CasectlError, InvalidInput
from ..nested import deep_merge
from ..store import blocks as block_store
from ..store import cases as case_store
from ..store import events as event_store
from ..store import savepoint
from ..timeutil import iso
from . import lifecycle
from .catalog import workflow_of
from .notify import Answer, DeliveryError

EVENT_KIND = "integration"
BLOCK_KIND = "enriched"
TARGETS = ("registry_data", "data")  # the case's own documents a mapping may merge into


@dataclass(frozen=True)
class Mapped:
    """An answer as the effect's mappings read it."""

    status: int
    merge: dict[str, dict[str, Any]] = field(default_factory=dict)  # registry_data / data -> object
    block: tuple[str, dict[str, Any]] | None = None  # (name, object)


def actor(payload: Mapping[str, Any]) -> str:
    """Who the history says did it: the call, by its effect's name."""
    return f"http:{payload.get('name') or 'effect'}"


def read(payload: Mapping[str, Any], answer: Answer) -> Mapped:
    """Apply the effect's mappings to a 2xx answer; DeliveryError (permanent) when it does not fit."""
    response = payload.get("response") or {}
    if not response:
        return Mapped(answer.status)
    try:
        doc = json.loads(answer.body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested beyond reason
        raise DeliveryError(
            f"the answer (HTTP {answer.status}) is not JSON; its response mapping needs a JSON body",
            permanent=True,
            http_status=answer.status,
        ) from None
    merge = {key: _object(response[key], doc, f"response.{key}", answer.status) for key in TARGETS if key in response}
    block = None
    spec = response.get("block")
    if isinstance(spec, Mapping):
        block = (str(spec.get("name")), _object(spec.get("data"), doc, "response.block.data", answer.status))
    return Mapped(answer.status, merge, block)


_JSON_TYPES = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
}


def _object(expression: Any, doc: Any, where: str, status: int) -> dict[str, Any]:
    import jmespath  # as rules/conditions.py: only a workflow that maps answers pays for it

    try:
        found = jmespath.search(str(expression), doc)
    except Exception as e:  # a parse error (a stored workflow that slipped the lint) or a type error
        raise DeliveryError(
            f"{where} ({expression}) cannot be applied to the answer ({type(e).__name__})",
            permanent=True,
            http_status=status,
        ) from None
    if not isinstance(found, dict):
        what = _JSON_TYPES.get(type(found), "a value")
        raise DeliveryError(f"{where} ({expression}) yields {what}, not an object", permanent=True, http_status=status)
    return found


def answered(conn: sqlite3.Connection, row: Mapping[str, Any], mapped: Mapped, *, now: datetime) -> None:
    """Apply `mapped` to the message's case, record it and fire the success_event, in the caller's
    transaction (the one that marks the message delivered). A problem with the case itself (it has
    a block of that name of another kind, say) raises, and the caller fails the message instead."""
    case = case_store.get(conn, row["case_id"]) if row.get("case_id") is not None else None
    if case is None:  # purged since: there is nothing left to apply it to
        return
    payload = row.get("payload") or {}
    at = iso(now)
    wf = workflow_of(conn, case)
    data: dict[str, Any] = {"effect": payload.get("name"), "http_status": mapped.status, "outbox": _oid(row)}
    if wf.is_final(case["status"]):
        data["not_applied"] = f"the case is {case['status']} (final); nothing in it changes any more"
    else:
        mapped_keys = _apply(conn, case, wf, mapped, actor=actor(payload), at=at)
        if mapped_keys:
            data["mapped"] = mapped_keys
    _record_and_fire(conn, case["id"], payload, "success_event", data, now=now)


def gave_up(
    conn: sqlite3.Connection, row: Mapping[str, Any], error: str, *, http_status: int | None, now: datetime
) -> None:
    """Record on the case that the call failed for good, and fire the error_event, in the caller's
    transaction (the one that marks the message failed). Never raises: the message is failed
    whatever its case makes of it."""
    if row.get("case_id") is None:
        return
    payload = row.get("payload") or {}
    data: dict[str, Any] = {"effect": payload.get("name"), "outbox": _oid(row), "error": error[:300]}
    if http_status is not None:
        data["http_status"] = http_status
    # Whatever goes wrong here (the clock behind the case's history, say), the outbox still says why it failed.
    with contextlib.suppress(Exception), savepoint(conn, "integration_failed"):
        if case_store.get(conn, row["case_id"]) is not None:
            _record_and_fire(conn, row["case_id"], payload, "error_event", data, now=now)


def _oid(row: Mapping[str, Any]) -> str | None:
    return ids.fmt("outbox", row.get("id"))


def _apply(
    conn: sqlite3.Connection, case: dict[str, Any], wf: rules.Workflow, mapped: Mapped, *, actor: str, at: str
) -> dict[str, Any]:
    """Merge the mapped objects into the case and its block; returns which keys went where."""
    from . import children

    keys: dict[str, Any] = {}
    changes = {key: deep_merge(case[key] or {}, obj) for key, obj in mapped.merge.items()}
    if changes:
        case_store.update(conn, case["id"], case["version"], changes, at=at)
        keys.update({key: sorted(obj) for key, obj in mapped.merge.items()})
    if mapped.block is not None:
        name, obj = mapped.block
        found = block_store.block_by_name(conn, case["id"], name)
        if found is None:
            children.new_block(conn, case, wf, BLOCK_KIND, name, obj, actor=actor, at=at)
        elif found["kind"] != BLOCK_KIND:
            raise InvalidInput(
                f"the case's block '{name}' is a {found['kind']} block; an http effect writes enriched blocks only"
            )
        else:
            block_store.update_block(conn, found["id"], {"data": deep_merge(found["data"], obj)}, at=at)
        if not changes:  # the case's version says that something in it changed
            children.touch(conn, case["id"], at=at)
        keys["block"] = name
        keys["block_keys"] = sorted(obj)
    return keys


def _record_and_fire(
    conn: sqlite3.Connection,
    case_id: int,
    payload: Mapping[str, Any],
    which: str,
    data: dict[str, Any],
    *,
    now: datetime,
) -> None:
    """Append the integration event, then fire the effect's event (`which`) if the case allows it now;
    if not, the event says why it was not fired. Then the automatic actions the change allows."""
    who = actor(payload)
    event = payload.get(which)
    at = iso(now)
    if event:
        try:
            with savepoint(conn, "integration_event"):
                fired = {**data, "fired": event}
                event_store.append(
                    conn, case_id, at=at, actor=who, kind=EVENT_KIND, data={**fired, "summary": _summary(fired)}
                )
                case = lifecycle.get(conn, case_id)
                lifecycle.perform(
                    conn, case, event, actor=who, now=now, trigger=rules.SYSTEM, data={"effect": payload.get("name")}
                )
            return
        except CasectlError as e:  # not allowed now (moved on, final, a guard): recorded, not retried
            data = {**data, "not_fired": event, "why_not": e.message[:300]}
    event_store.append(conn, case_id, at=at, actor=who, kind=EVENT_KIND, data={**data, "summary": _summary(data)})
    lifecycle.advance(conn, case_id, actor=who, now=now)  # what the new data allows (a fired event does it too)


def _summary(data: Mapping[str, Any]) -> str:
    """The history's line: which call, how it went, what it changed, which event it fired."""
    effect = data.get("effect") or "http"
    if "error" in data:
        parts = [f"{effect} failed: {data['error']}"]
    else:
        parts = [f"{effect}: HTTP {data.get('http_status')}"]
    mapped = data.get("mapped") or {}
    for key in TARGETS:
        if key in mapped:
            parts.append(f"{key}: {', '.join(mapped[key]) or 'nothing'}")
    if "block" in mapped:
        parts.append(f"block {mapped['block']}: {', '.join(mapped.get('block_keys') or ()) or 'nothing'}")
    if data.get("not_applied"):
        parts.append(f"not applied: {data['not_applied']}")
    if data.get("fired"):
        parts.append(f"fired {data['fired']}")
    elif data.get("not_fired"):
        parts.append(f"{data['not_fired']} not fired: {data.get('why_not')}")
    text = "; ".join(parts)
    return text if len(text) <= 300 else text[:297] + "..."
