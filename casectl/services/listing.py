"""Selecting cases: the one query path behind list, export, report, stats and digest."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from ..filters import CaseFilter, parse_sort
from ..store import cases as case_store


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
