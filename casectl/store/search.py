"""Full-text search over cases (FTS5 table `case_search`, kept in step by
triggers on cases and subjects; see migration 0002_queue)."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator

from ..filters import CaseFilter
from . import cases as case_store

_COLUMNS = case_store.SELECT[: case_store.SELECT.index(" FROM cases c")]
# Column weights for bm25: an id or reference hit outranks a name, a name an email.
_RANK = "bm25(case_search, 20.0, 20.0, 4.0, 2.0, 1.0)"


def search_sql(match: str, f: CaseFilter, *, exact_id: int | None, exact_ref: str | None,
               limit: int | None) -> tuple[str, list[Any]]:
    where, params = case_store.where_sql(f)
    if not where:
        # No filter: rank inside FTS5 first, then fetch only the page's cases.
        sql = (f"{_COLUMNS} FROM (SELECT rowid AS id, {_RANK} AS score FROM case_search WHERE case_search MATCH ? "
               f"ORDER BY (rowid = ?) DESC, score LIMIT ?) hit JOIN cases c ON c.id = hit.id "
               f"LEFT JOIN subjects s ON s.id = c.subject_id ORDER BY (c.id = ?) DESC, hit.score, c.id")
        eid = exact_id if exact_id is not None else -1
        return sql, [match, eid, -1 if limit is None else limit, eid]
    where = " WHERE case_search MATCH ?" + (" AND " + where[len(" WHERE "):] if where else "")
    sql = (f"{_COLUMNS} FROM case_search JOIN cases c ON c.id = case_search.rowid "
           f"LEFT JOIN subjects s ON s.id = c.subject_id{where} "
           f"ORDER BY (c.id = ?) DESC, (c.ref = ?) DESC, {_RANK}, c.id")
    params = [match, *params, exact_id if exact_id is not None else -1, exact_ref]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def search(conn: sqlite3.Connection, match: str, f: CaseFilter, *, exact_id: int | None = None,
           exact_ref: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    sql, params = search_sql(match, f, exact_id=exact_id, exact_ref=exact_ref, limit=limit)
    return case_store.dicts(conn, sql, params)
