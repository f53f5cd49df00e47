"""Selecting cases: the one query path behind list, export, report, stats and digest."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from ..errors import NotFound
from ..filters import CaseFilter, parse_sort
from ..store import cases as case_store
from ..store import views as view_store


def view_filter(conn: sqlite3.Connection, name: str) -> CaseFilter:
    row = view_store.get(conn, name)
    if row is None:
        names = ", ".join(v["name"] for v in view_store.list_(conn)) or "none saved yet"
        raise NotFound(f"no view '{name}' (views: {names})")
    return CaseFilter.from_dict(row["filters"])


def select(
    conn: sqlite3.Connection,
    f: CaseFilter,
    *,
    sort: str | None = None,
    limit: int | None = None,
    after: tuple[Any, int] | None = None,
) -> Iterator[dict[str, Any]]:
    column, descending = parse_sort(sort)
    return case_store.select(conn, f, sort=column, descending=descending, limit=limit, after=after)


def count(conn: sqlite3.Connection, f: CaseFilter) -> int:
    return case_store.count(conn, f)


def count_by(conn: sqlite3.Connection, f: CaseFilter, column: str) -> list[tuple[Any, int]]:
    return case_store.count_by(conn, f, column)
