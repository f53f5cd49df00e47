"""`casectl db check`: is the file sound and does every case agree with its history?"""

from __future__ import annotations

import hmac
import sqlite3
from typing import Any

from .. import ids
from ..store import chain, documents, read
from ..store import events as event_store
from ..store import integrity as checks
from . import workflows as workflow_service
from .anchor import Anchor

GUARD_TRIGGERS = {"events_no_update", "events_no_delete"}


def check(conn: sqlite3.Connection, *, limit: int = 100, anchor: Anchor | None = None) -> dict[str, Any]:
    problems: list[str] = []
    key = chain.key(conn)  # without the key nothing can be verified: exit 7, naming where it was looked for
    anchored_cases = len(anchor.heads) if anchor is not None else 0  # chain_problems consumes the heads
    with read(conn):
        problems += [f"integrity: {msg}" for msg in checks.integrity_messages(conn)]
        problems += [
            f"foreign key: {table} row {rowid} points to a missing {parent}"
            for table, rowid, parent, *_ in checks.foreign_key_problems(conn)
        ]
        problems += chain_problems(conn, key, anchor)
        problems += [
            f"{ids.fmt('case', cid)} is {status} but its history ends in {expected}"
            for cid, status, expected in checks.status_mismatches(conn)
        ]
        problems += [f"{ids.fmt('case', cid)} has no history" for cid in checks.cases_without_history(conn)]
        problems += [
            f"kyc block {name} ({ids.fmt('block', bid)}) of {ids.fmt('case', cid)} points to "
            + (f"{ids.fmt('case', child)}, which is missing" if child is not None else "no KYC case")
            for bid, cid, name, child in checks.kyc_blocks_without_child(conn)
        ]
        problems += replay(conn)
        problems += [f"document {sha[:12]}...: {problem}" for sha, problem in documents.corrupt_documents(conn)]
        missing = GUARD_TRIGGERS - checks.event_triggers(conn)
        problems += [f"history is not protected: trigger {name} is missing" for name in sorted(missing)]
        cases, events = checks.totals(conn)
    result: dict[str, Any] = {
        "ok": not problems,
        "problems": problems[:limit],
        "problem_count": len(problems),
        "cases": cases,
        "events": events,
    }
    if anchor is not None:
        result["anchor"] = {"made": anchor.made, "cases": anchored_cases, "signed": anchor.signed}
    return result


def chain_problems(conn: sqlite3.Connection, key: chain.Key, anchor: Anchor | None) -> list[str]:
    """Every event's MAC and link, each case's chain head, the seal, and the anchor if given."""
    problems: list[str] = []
    breaks: list[tuple[int, int, str]] = []
    broken: set[int] = set()
    last_case, last_event = chain.seal(conn)
    seal_row = chain.seal_row(conn)
    if seal_row is None:
        problems.append("the database seal is missing (removed outside casectl)")
    elif not hmac.compare_digest(seal_row["mac"], chain.seal_mac(key, last_case, last_event)):
        problems.append("the database seal was edited outside casectl (its MAC does not hold)")
    heads = chain.heads_with_cases(conn)
    chains = event_store.verify(key, event_store.chain_rows(conn), breaks)
    pending = next(chains, None)
    expected_id = 1
    for h in heads:
        case_id = h["case_id"]
        c = ids.fmt("case", case_id)
        while pending is not None and pending.case_id < case_id:
            problems.append(f"{ids.fmt('case', pending.case_id)} has events but no chain head (added outside casectl)")
            pending = next(chains, None)
        found = None
        if pending is not None and pending.case_id == case_id:
            found, pending = pending, next(chains, None)
        for gap in range(expected_id, case_id):
            if gap <= last_case:
                problems.append(
                    f"{ids.fmt('case', gap)} is missing: no case, history or chain head (removed outside casectl)"
                )
        expected_id = case_id + 1
        n, last, at, head, purged = h["events"], h["last_event"], h["last_at"], h["head"], h["purged_at"]
        if not hmac.compare_digest(h["mac"], chain.head_mac(key, case_id, n, last, at, head, purged)):
            problems.append(f"{c}: its chain head was edited outside casectl (its MAC does not hold)")
        elif purged is not None:
            if found is not None or h["has_case"]:
                problems.append(f"{c} was purged on {purged} but is back (restored outside casectl)")
        elif found is None:
            what = "its case and history are" if not h["has_case"] else "its history is"
            problems.append(f"{c}: {what} gone (deleted outside casectl; its chain head records {n} events)")
        elif not h["has_case"]:
            problems.append(f"{c}: the case is gone but its history remains (deleted outside casectl)")
        elif found.events != n or found.head != head:
            if found.events < n:
                what = f"lost {n - found.events} of its {n} events"
            elif found.events > n:
                what = f"gained {found.events - n} events"
            else:
                what = "a different last event"
            problems.append(f"{c}: its history {what} since casectl last wrote it (changed outside casectl)")
        if found is not None and anchor is not None:
            problems += _against_anchor(conn, c, found, anchor.heads.pop(case_id, None), anchor)
        elif anchor is not None and case_id in anchor.heads and purged is None:
            had = anchor.heads.pop(case_id)[0]
            problems.append(f"{c}: its history of {had} events at the anchor ({anchor.made}) is gone")
        elif anchor is not None:
            anchor.heads.pop(case_id, None)  # purged on purpose since
    while pending is not None:
        problems.append(f"{ids.fmt('case', pending.case_id)} has events but no chain head (added outside casectl)")
        pending = next(chains, None)
    for gap in range(expected_id, last_case + 1):
        problems.append(f"{ids.fmt('case', gap)} is missing: no case, history or chain head (removed outside casectl)")
    top_case, top_event = chain.top_ids(conn)
    if top_case > last_case or top_event > last_event:
        problems.append("cases or events beyond the database seal were added outside casectl")
    for case_id, event_id, problem in breaks:
        if case_id not in broken:  # the first broken link of each case
            broken.add(case_id)
            problems.append(f"history of {ids.fmt('case', case_id)} breaks at {ids.fmt('event', event_id)}: {problem}")
    problems += [
        f"history of {ids.fmt('case', case_id)} was already broken at {ids.fmt('event', event_id)} "
        "before the keyed chain (schema 9) sealed it"
        for case_id, event_id in chain.v1_breaks(conn)
    ]
    if anchor is not None:
        if not anchor.signed:
            problems.append(
                f"the anchor of {anchor.made} is not signed with this database's key (edited, or another database's)"
            )
        for case_id, (had, _) in sorted(anchor.heads.items()):
            problems.append(
                f"{ids.fmt('case', case_id)}: its history of {had} events at the anchor ({anchor.made}) is gone"
            )
    return problems


def _against_anchor(
    conn: sqlite3.Connection, c: str, found: event_store.CaseChain, anchored: tuple[int, str] | None, anchor: Anchor
) -> list[str]:
    before = sum(1 for e in found.event_ids if e <= anchor.last_event)
    if anchored is None:
        if before:
            return [f"{c}: {before} events dated before the anchor ({anchor.made}) that the anchor does not know"]
        return []
    had, head = anchored
    if found.events < had:
        return [f"{c}: its history lost events since the anchor ({anchor.made}): {had} then, {found.events} now"]
    if found.hashes[had - 1] != head:
        return [f"{c}: its history before the anchor ({anchor.made}) was changed"]
    if before > had:
        return [f"{c}: its history gained {before - had} events before the anchor ({anchor.made})"]
    return []


def replay(conn: sqlite3.Connection) -> list[str]:
    """Replay every case's history through its workflow's rules.

    Each status-changing event must start where the previous one ended and be a
    move the workflow allows (an action's sources and targets, or a direct
    status change the workflow permits); the last one must be the stored status.
    """
    problems: list[str] = []
    workflows: dict[tuple[str, int], Any] = {}
    current: dict[int, str] = {}
    bad: set[int] = set()
    for case_id, wf_name, wf_version, kind, action, frm, to, event_id in checks.status_events(conn):
        if case_id in bad:
            continue
        key = (wf_name, wf_version)
        if key not in workflows:
            workflows[key] = workflow_service.get(conn, wf_name, wf_version)
        wf = workflows[key]
        where = f"{ids.fmt('case', case_id)} at {ids.fmt('event', event_id)}"
        if kind == "created":
            problem = None if wf.status(to) else f"{where}: created in unknown status {to}"
        elif current.get(case_id) != frm:
            problem = f"{where}: starts from {frm} but the case was {current.get(case_id)}"
        elif kind == "status":
            ok = frm in wf.set_status.sources and to in wf.set_status.targets
            problem = None if ok else f"{where}: {wf.name} does not allow setting {frm} -> {to}"
        else:
            spec = wf.action(action) if action else None
            ok = spec is not None and frm in spec.sources and to in spec.targets
            problem = None if ok else f"{where}: {action} cannot move {frm} -> {to} in {wf.name} v{wf.version}"
        if problem:
            problems.append(problem)
            bad.add(case_id)
        current[case_id] = to
    return problems
