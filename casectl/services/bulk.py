"""Bulk work through pipes: `casectl list ... --ids | casectl act - reject ...`.

All the ids are applied in ONE transaction: every case changes or none does.
Each case is still judged by the rules on its own; the refusals are gathered
so one run names every case that blocked the batch. With dry_run the whole
batch really runs and is then rolled back, so what it prints is exactly what
would happen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CasectlError
from ..store import rollback, write
from . import cases as case_service


def read_ids(lines: Iterable[str]) -> list[str]:
    """Case ids or references, one per line (the first field of each line, so
    `list` table output works too); blank lines and # comments are skipped."""
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        first = text.split()[0]
        if first not in seen:
            seen.add(first)
            out.append(first)
    return out


@dataclass
class BulkResult:
    done: list[Any] = field(default_factory=list)
    refused: list[tuple[str, CasectlError]] = field(default_factory=list)
    dry_run: bool = False


def run(
    conn: sqlite3.Connection,
    refs: list[str],
    fn: Callable[[str, dict[str, Any]], Any],
    *,
    dry_run: bool = False,
    what: str = "change",
) -> BulkResult:
    """Apply fn(ref, case) to every case, inside one write transaction."""
    result = BulkResult(dry_run=dry_run)
    with write(conn):
        for ref in refs:
            try:
                case = case_service.load(conn, ref)
                result.done.append(fn(ref, case))
            except CasectlError as e:
                result.refused.append((ref, e))
        if dry_run:
            rollback(conn)
            return result
        if result.refused:
            ref, first = result.refused[0]
            details = [f"{r}: {e.message}" for r, e in result.refused]
            err = type(first)(
                f"{len(result.refused)} of {len(refs)} cases refused the {what}; nothing was changed", details=details
            )
            raise err
    return result


def act(
    conn: sqlite3.Connection,
    refs: list[str],
    action: str,
    *,
    actor: str,
    now,
    trigger: str,
    reason: str | None = None,
    decision: str | None = None,
    expect_status: str | None = None,
    dry_run: bool = False,
) -> BulkResult:
    def one(ref: str, case: dict[str, Any]) -> case_service.Outcome:
        out = case_service.act_in(
            conn,
            ref,
            action,
            actor=actor,
            now=now,
            trigger=trigger,
            reason=reason,
            decision=decision,
            expect_status=expect_status,
        )
        out.dry_run = dry_run
        return out

    return run(conn, refs, one, dry_run=dry_run, what=action)
