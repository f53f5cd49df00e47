"""Full-text search over cases (FTS5 table `case_search`, kept in step by
triggers on cases and subjects; see migration 0002_queue).

On PostgreSQL `case_search` holds a tsvector per case (store/pg_schema.py) and the
same query is asked as a tsquery: each phrase's words in a row (`<->`), the last a
prefix (`:*`), every phrase required, ranked by ts_rank with the same column weights."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from ..filters import CaseFilter
from . import cases as case_store
from .dialect import dialect

_COLUMNS = case_store.SELECT[: case_store.SELECT.index(" FROM cases c")]
# Column weights for bm25: an id or reference hit outranks a name, a name an email.
_RANK = "bm25(case_search, 20.0, 20.0, 4.0, 2.0, 1.0)"


def search_sql(
    match: str, f: CaseFilter, *, exact_id: int | None, exact_ref: str | None, limit: int | None
) -> tuple[str, list[Any]]:
    where, params = case_store.where_sql(f)
    if not where:
        # No filter: rank inside FTS5 first, then fetch only the page's cases.
        # Without an exact id there is nothing to put first: one sort key less over every match.
        first = "(rowid = ?) DESC, " if exact_id is not None else ""
        sql = (
            f"{_COLUMNS} FROM (SELECT rowid AS id, {_RANK} AS score FROM case_search WHERE case_search MATCH ? "
            f"ORDER BY {first}score LIMIT ?) hit JOIN cases c ON c.id = hit.id "
            f"LEFT JOIN subjects s ON s.id = c.subject_id ORDER BY (c.id = ?) DESC, hit.score, c.id"
        )
        eid = exact_id if exact_id is not None else -1
        return sql, [match, *([eid] if first else []), -1 if limit is None else limit, eid]
    where = " WHERE case_search MATCH ?" + (" AND " + where[len(" WHERE ") :] if where else "")
    sql = (
        f"{_COLUMNS} FROM case_search JOIN cases c ON c.id = case_search.rowid "
        f"LEFT JOIN subjects s ON s.id = c.subject_id{where} "
        f"ORDER BY (c.id = ?) DESC, (c.ref = ?) DESC, {_RANK}, c.id"
    )
    params = [match, *params, exact_id if exact_id is not None else -1, exact_ref]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def search(
    conn: sqlite3.Connection,
    match: str,
    f: CaseFilter,
    *,
    exact_id: int | None = None,
    exact_ref: str | None = None,
    limit: int | None = None,
    narrow: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Cases matching the FTS5 query `match` and the filter, best first.

    `narrow` is a cheaper query that every match of `match` also matches (see
    services.search.narrow_query). When it finds at most NARROW_MAX rows, those
    are checked against `match` in a small in-memory FTS5 table with the same
    tokenizer and ranked by bm25 of `narrow`: `match` is never run on the big
    index, where a short trailing prefix ("...@example") reads every email.
    """
    if dialect(conn) == "postgresql":
        sql, params = _pg_search_sql(match, f, exact_id=exact_id, exact_ref=exact_ref, limit=limit)
        return case_store.dicts(conn, sql, params)
    if (
        narrow is not None
        and conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM case_search WHERE case_search MATCH ? LIMIT ?)",
            (narrow, NARROW_MAX + 1),
        ).fetchone()[0]
        <= NARROW_MAX
    ):
        # bm25 only now: for a common token its statistics alone read the token's whole list.
        hits = conn.execute(
            f"SELECT rowid, {_RANK}, case_no, ref, name, email, dob FROM case_search WHERE case_search MATCH ?",
            (narrow,),
        ).fetchall()
        return _narrowed(conn, hits, match, f, exact_id=exact_id, exact_ref=exact_ref, limit=limit)
    sql, params = search_sql(match, f, exact_id=exact_id, exact_ref=exact_ref, limit=limit)
    return case_store.dicts(conn, sql, params)


NARROW_MAX = 1000
# The tokenizer of case_search (migration 0002_queue): the same words match the same way.
_TOKENIZER = "unicode61 remove_diacritics 2"
_check_lock = threading.Lock()
_check_db: sqlite3.Connection | None = None


def _matching(rows: list[tuple], match: str) -> set[int]:
    """Which of these case_search rows (rowid, case_no, ref, name, email, dob) match `match`."""
    global _check_db
    with _check_lock:
        if _check_db is None:
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            db.execute(f"CREATE VIRTUAL TABLE m USING fts5(case_no, ref, name, email, dob, tokenize = '{_TOKENIZER}')")
            _check_db = db
        db = _check_db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO m (rowid, case_no, ref, name, email, dob) VALUES (?, ?, ?, ?, ?, ?)", rows)
            return {r[0] for r in db.execute("SELECT rowid FROM m WHERE m MATCH ?", (match,))}
        finally:
            db.execute("ROLLBACK")


def _narrowed(
    conn: sqlite3.Connection,
    hits: list,
    match: str,
    f: CaseFilter,
    *,
    exact_id: int | None,
    exact_ref: str | None,
    limit: int | None,
) -> Iterator[dict[str, Any]]:
    found = _matching([(h[0], *h[2:]) for h in hits], match)
    if not found:
        return iter(())
    score = {h[0]: h[1] for h in hits if h[0] in found}
    where, params = case_store.where_sql(f)
    marks = ", ".join("?" for _ in score)
    where = (where + " AND " if where else " WHERE ") + f"c.id IN ({marks})"
    rows = list(case_store.dicts(conn, f"{case_store.SELECT}{where}", [*params, *score]))
    rows.sort(key=lambda c: (c["id"] != exact_id, c["ref"] != exact_ref, score[c["id"]], c["id"]))
    return iter(rows if limit is None or limit < 0 else rows[:limit])


# --- PostgreSQL -----------------------------------------------------------------------

_PHRASE = re.compile(r'"([^"]*)"(\*?)')
# ts_rank's weights for D, C, B, A: dob, email, name, id and reference (bm25's above, scaled).
_PG_RANK = "ts_rank('{0.05, 0.1, 0.2, 1.0}', cs.doc, q.q)"


def tsquery(match: str) -> str:
    """The FTS5 query services.search.match_query writes, as tsquery text: `"ada love"*` is
    `'ada' <-> 'love':*`; phrases are joined with `&`. (Tokens are letters and digits only.)"""
    parts = []
    for words, star in _PHRASE.findall(match):
        tokens = [f"'{t}'" for t in words.split()]
        if not tokens:
            continue
        if star:
            tokens[-1] += ":*"
        parts.append("(" + " <-> ".join(tokens) + ")")
    return " & ".join(parts)


def _pg_search_sql(
    match: str, f: CaseFilter, *, exact_id: int | None, exact_ref: str | None, limit: int | None
) -> tuple[str, list[Any]]:
    where, params = case_store.where_sql(f)
    if not where:
        # No filter: rank inside case_search first, then fetch only the page's cases.
        sql = (
            f"{_COLUMNS} FROM (SELECT cs.id, {_PG_RANK} AS score, (cs.id = ?) AS exact_id, "
            "coalesce(cs.ref = ?, FALSE) AS exact_ref "
            "FROM (SELECT to_tsquery('simple', casectl_query_words(?)) AS q) q JOIN case_search cs ON cs.doc @@ q.q "
            "ORDER BY exact_id DESC, exact_ref DESC, score DESC, cs.id"
            + (" LIMIT ?" if limit is not None and limit >= 0 else "")
            + ") hit JOIN cases c ON c.id = hit.id LEFT JOIN subjects s ON s.id = c.subject_id "
            "ORDER BY hit.exact_id DESC, hit.exact_ref DESC, hit.score DESC, c.id"
        )
        out = [exact_id if exact_id is not None else -1, exact_ref, tsquery(match)]
        return sql, out + ([limit] if limit is not None and limit >= 0 else [])
    extra = " AND " + where[len(" WHERE ") :]
    sql = (
        f"{_COLUMNS} FROM (SELECT to_tsquery('simple', casectl_query_words(?)) AS q) q "
        f"JOIN case_search cs ON cs.doc @@ q.q JOIN cases c ON c.id = cs.id "
        f"LEFT JOIN subjects s ON s.id = c.subject_id WHERE TRUE{extra} "
        f"ORDER BY (c.id = ?) DESC, coalesce(c.ref = ?, FALSE) DESC, {_PG_RANK} DESC, c.id"
    )
    out = [tsquery(match), *params, exact_id if exact_id is not None else -1, exact_ref]
    if limit is not None and limit >= 0:
        sql += " LIMIT ?"
        out.append(limit)
    return sql, out
