"""The workflow a case runs on: built-ins and stored definitions, parsed once per process.

A case keeps the workflow version it was created with; this is where that
version is found. The kernel and its followers both read workflows here.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from .. import rules
from ..errors import NotFound
from ..rules import Workflow
from ..store import workflows as wf_store


@functools.lru_cache(maxsize=256)
def _parsed(definition: str) -> Workflow:
    return rules.workflow_from_dict(json.loads(definition))


def workflow(conn: sqlite3.Connection | None, name: str, version: int | None = None) -> Workflow:
    """The workflow `name` at `version` (default: the newest known), parsed once per process.

    Without a database only the built-ins are known.
    """
    builtin = rules.BUILTIN.get(name)
    if builtin is not None and version == builtin.version:
        return builtin
    row = wf_store.get(conn, name, version) if conn is not None else None
    if row is not None and (version is not None or builtin is None or row["version"] >= builtin.version):
        return _parsed(json.dumps(row["definition"], sort_keys=True))
    if builtin is not None and version is None:
        return builtin
    known = sorted(set(rules.BUILTIN) | ({r["name"] for r in wf_store.latest_all(conn)} if conn else set()))
    what = f"{name} version {version}" if version is not None else name
    raise NotFound(f"unknown workflow '{what}'; known: {', '.join(known)}")


def workflow_of(conn: sqlite3.Connection, case: Mapping[str, Any]) -> Workflow:
    """The workflow version the case was created with."""
    return workflow(conn, case["workflow"], case["workflow_version"])


def record_workflow(conn: sqlite3.Connection, wf: Workflow, *, at: str, actor: str) -> None:
    """Record the definition a case is about to use (a no-op when already there)."""
    builtin = rules.BUILTIN.get(wf.name)
    wf_store.save(conn, rules.workflow_to_dict(wf), builtin=builtin == wf, at=at, actor=actor)
