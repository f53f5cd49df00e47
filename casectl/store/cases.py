"""Cases and their tags: rows in, rows out, and the SQL behind every filter."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import Conflict, NotFound
from ..filters import CaseFilter, WhereClause
from .db import inserted_id

# Columns a service may change through `update`.
UPDATABLE = (
    "status",
    "status_since",
    "final",
    "data",
    "registry_data",
    "assignee",
    "team",
    "priority",
    "due_at",
    "decided_at",
    "decided_by",
    "decision",
    "decision_reason",
    "last_editor",
    "subject_id",
    "ref",
)

SELECT = (
    "SELECT c.*, s.ref AS subject_ref, s.name AS subject_name, s.email AS subject_email, s.dob AS subject_dob, "
    "s.country AS subject_country, s.entity_type AS subject_entity_type, "
    "(SELECT json_group_array(tag) FROM (SELECT tag FROM case_tags t WHERE t.case_id = c.id ORDER BY tag) AS tag_rows) AS tags "
    "FROM cases c LEFT JOIN subjects s ON s.id = c.subject_id"
)


def insert(conn: sqlite3.Connection, row: dict[str, Any]) -> int:
    row = dict(row)
    for key in ("data", "registry_data"):
        if not isinstance(row.get(key, "{}"), str):
            row[key] = json.dumps(row[key], ensure_ascii=False, sort_keys=True)
    cols = list(row)
    cur = conn.execute(
        f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [row[c] for c in cols],
    )
    return inserted_id(cur)


def get(conn: sqlite3.Connection, case_id: int) -> dict | None:
    row = conn.execute(f"{SELECT} WHERE c.id = ?", (case_id,)).fetchone()
    return to_dict(row) if row else None


def fetch(conn: sqlite3.Connection, case_id: int) -> dict[str, Any]:
    """A case that must exist (the caller holds its id from the same transaction)."""
    case = get(conn, case_id)
    if case is None:
        raise NotFound(f"no case C-{case_id}")
    return case


def get_by_ref(conn: sqlite3.Connection, ref: str) -> dict | None:
    row = conn.execute(f"{SELECT} WHERE c.ref = ?", (ref,)).fetchone()
    return to_dict(row) if row else None


def id_for_ref(conn: sqlite3.Connection, ref: str) -> int | None:
    row = conn.execute("SELECT id FROM cases WHERE ref = ?", (ref,)).fetchone()
    return row[0] if row else None


def update(conn: sqlite3.Connection, case_id: int, version: int, changes: dict[str, Any], *, at: str) -> int:
    """Apply `changes` if the case is still at `version`; returns the new version."""
    bad = [c for c in changes if c not in UPDATABLE]
    if bad:
        raise ValueError(f"not updatable: {bad}")
    values = {
        k: (
            json.dumps(v, ensure_ascii=False, sort_keys=True)
            if k in ("data", "registry_data") and not isinstance(v, str)
            else v
        )
        for k, v in changes.items()
    }
    sets = "".join(f"{c} = ?, " for c in values)
    cur = conn.execute(
        f"UPDATE cases SET {sets}updated_at = ?, version = version + 1 WHERE id = ? AND version = ?",
        (*values.values(), at, case_id, version),
    )
    if cur.rowcount != 1:
        raise Conflict(f"case C-{case_id} changed underneath (expected version {version}); reload and try again")
    return version + 1


def set_tags(conn: sqlite3.Connection, case_id: int, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
    conn.executemany("INSERT OR IGNORE INTO case_tags (case_id, tag) VALUES (?, ?)", [(case_id, t) for t in add])
    conn.executemany("DELETE FROM case_tags WHERE case_id = ? AND tag = ?", [(case_id, t) for t in remove])


def to_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for key in ("data", "registry_data"):
        v = d.get(key)
        d[key] = json.loads(v) if v and v != "{}" else {}  # most cases carry no data: skip the parse
    t = d.get("tags")
    d["tags"] = json.loads(t) if t and t != "[]" else []
    d["final"] = bool(d.get("final"))
    return d


def dicts(conn: sqlite3.Connection, sql: str, params: list[Any] | tuple = ()) -> Iterator[dict[str, Any]]:
    """Rows of a `SELECT` query as case dicts, like `to_dict` but cheaper per row.

    Reads plain tuples (no sqlite3.Row), zips them with the column names once
    per query, and parses JSON only when a value is not the empty default:
    most cases carry no data and no tags.
    """
    cur = conn.cursor()
    cur.row_factory = None
    cur.execute(sql, params)
    names = tuple(d[0] for d in cur.description)
    loads = json.loads
    for row in cur:
        d = dict(zip(names, row))
        v = d["data"]
        d["data"] = loads(v) if v and v != "{}" else {}
        v = d["registry_data"]
        d["registry_data"] = loads(v) if v and v != "{}" else {}
        v = d["tags"]
        d["tags"] = loads(v) if v and v != "[]" else []
        d["final"] = bool(d["final"])
        yield d


# --- filters ----------------------------------------------------------------

_SUBJECT_COLUMNS = {
    "name": "s.name",
    "email": "s.email",
    "dob": "s.dob",
    "country": "s.country",
    "entity_type": "s.entity_type",
    "ref": "s.ref",
}


def _json_path(parts: tuple[str, ...]) -> str:
    return "$" + "".join(f'."{p}"' for p in parts)


# A case decided after its SLA's due time; `--sla-breached` and the breach counts of `stats`.
BREACHED = "c.final = 1 AND c.due_at IS NOT NULL AND c.decided_at > c.due_at"


def where_sql(f: CaseFilter, *, ordered: bool = True, walk: frozenset[str] = frozenset()) -> tuple[str, list[Any]]:
    """The WHERE clause (with a leading ' WHERE ', or '') and its parameters.

    Every form selects the same cases; they differ in how SQLite reads them.
    `ordered` (pages): ranges as `c.id IN (SELECT id ... range)`, ids in order
    so a page needs no sort. Not ordered (counts): plain range conditions,
    counted straight off a covering index. `walk` (pages of dense filters,
    chosen by `select` after a probe): "due" walks the open cases in id order
    and checks due_at on each; "country" walks in id order and looks up each
    case's subject. Both stop after one page when most rows match.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if f.statuses:
        clauses.append(f"c.status IN ({', '.join('?' for _ in f.statuses)})")
        params += list(f.statuses)
    if f.workflow_statuses:
        clauses.append(f"(c.workflow, c.status) IN (VALUES {', '.join('(?, ?)' for _ in f.workflow_statuses)})")
        params += [x for pair in f.workflow_statuses for x in pair]
    for col, value in (
        ("c.workflow", f.workflow),
        ("c.assignee", f.assignee),
        ("c.team", f.team),
        ("c.priority", f.priority),
    ):
        if value is not None:
            clauses.append(f"{col} = ?")
            params.append(value)
    if f.country is not None:
        if "country" in walk:
            clauses.append("EXISTS (SELECT 1 FROM subjects cs WHERE cs.id = c.subject_id AND cs.country = ?)")
        else:  # through the subjects' country index, not a scan of every case
            clauses.append("c.subject_id IN (SELECT id FROM subjects WHERE country = ?)")
        params.append(f.country)
    if f.unassigned:
        clauses.append("c.assignee IS NULL")
    if f.open_only:
        clauses.append("c.final = 0")
    if f.closed_only:
        clauses.append("c.final = 1")
    if f.subject_id is not None:
        clauses.append("c.subject_id = ?")
        params.append(f.subject_id)
    if f.parent is not None:
        clauses.append("c.parent_id = ?")
        params.append(f.parent)
    # Ranges go through `c.id IN (SELECT id ... range)`: the range is read from its
    # index alone and the ids come back in order, so a page needs no sort, and
    # the planner cannot pick a scan of the table in id order instead.
    # In a page the ranges read only their index (`c.id IN (SELECT id ...)`);
    # in a count the plain condition is counted off a covering index.
    q = "" if ordered else "c."

    def ranged(cond: str) -> str:
        return f"c.id IN (SELECT id FROM cases WHERE {cond})" if ordered else cond

    if f.created_since or f.created_until:
        rng = " AND ".join(
            x
            for x in (
                f"{q}created_at >= ?" if f.created_since else "",
                f"{q}created_at <= ?" if f.created_until else "",
            )
            if x
        )
        clauses.append(ranged(rng))
        params += [v for v in (f.created_since, f.created_until) if v]
    for value, op in ((f.overdue_at, "<"), (f.due_before, "<=")):
        if not value:
            continue
        if "due" in walk:  # `+` keeps SQLite on the open cases' id order instead of the due range
            clauses.append(f"c.final = 0 AND c.due_at IS NOT NULL AND +c.due_at {op} ?")
        else:
            clauses.append(ranged(f"{q}final = 0 AND {q}due_at IS NOT NULL AND {q}due_at {op} ?"))
        params.append(value)
    if f.in_status_before:
        clauses.append(ranged(f"{q}status_since <= ?"))
        params.append(f.in_status_before)
    if f.decided_since or f.decided_until:
        rng = " AND ".join(
            x
            for x in (
                f"{q}decided_at >= ?" if f.decided_since else "",
                f"{q}decided_at <= ?" if f.decided_until else "",
            )
            if x
        )
        clauses.append(ranged(rng))
        params += [v for v in (f.decided_since, f.decided_until) if v]
    if f.sla_breached:
        clauses.append(BREACHED)
    if f.ids:
        clauses.append(f"c.id IN ({', '.join('?' for _ in f.ids)})")
        params += list(f.ids)
    for tag in f.tags:
        # IN over the (tag, case_id) index: the rare tag is found without a scan.
        clauses.append("c.id IN (SELECT case_id FROM case_tags WHERE tag = ?)")
        params.append(tag)
    for w in f.where:
        clause, values = _where_clause(w)
        clauses.append(clause)
        params += values
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def in_use(conn: sqlite3.Connection, *, workflow: str | None = None, status: str | None = None) -> bool:
    """Whether some case is on this workflow and/or in this status (by index; one row at most)."""
    conds = [c for c, v in (("workflow = ?", workflow), ("status = ?", status)) if v is not None]
    values = [v for v in (workflow, status) if v is not None]
    sql = f"SELECT 1 FROM cases WHERE {' AND '.join(conds) or '1'} LIMIT 1"
    return conn.execute(sql, values).fetchone() is not None


def _contains(value: str) -> str:
    """A LIKE pattern for text containing `value` (ESCAPE '\\')."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where_clause(w: WhereClause) -> tuple[str, list[Any]]:
    """One `--where` condition and its parameters (filters.WhereClause says what each operator means)."""
    if w.scope == "subject" and len(w.path) == 1 and w.path[0] in _SUBJECT_COLUMNS:
        column, value = w.path[0], w.value
        if column == "email" and w.op in ("=", "!="):  # the indexed, case-folded key
            column, value = "email_key", value.strip().lower()
        # Find the subjects first (email and ref are indexed), then their cases by index.
        if w.op == "~":
            return f"c.subject_id IN (SELECT id FROM subjects WHERE {column} LIKE ? ESCAPE '\\')", [_contains(value)]
        if w.op == "!=":  # a case without a subject, or whose subject's field differs or is empty
            return f"NOT (c.subject_id IS NOT NULL AND c.subject_id IN (SELECT id FROM subjects WHERE {column} = ?))", [
                value
            ]
        return f"c.subject_id IN (SELECT id FROM subjects WHERE {column} {w.op} ?)", [value]
    column = {"subject": "s.data", "data": "c.data", "registry_data": "c.registry_data"}[w.scope]
    path = _json_path(w.path)
    text = f"CAST(json_extract({column}, ?) AS TEXT)"
    if w.op == "=":
        return f"{text} = ?", [path, w.value]
    if w.op == "!=":
        return f"(json_extract({column}, ?) IS NULL OR {text} != ?)", [path, path, w.value]
    if w.op == "~":
        return f"{text} LIKE ? ESCAPE '\\'", [path, _contains(w.value)]
    if w.numeric:  # a JSON number compared as one (store/pg.py spells this for PostgreSQL)
        number = f"CASE WHEN json_type({column}, ?) IN ('integer', 'real') THEN json_extract({column}, ?) END"
        return f"{number} {w.op} ?", [path, path, float(w.value)]
    return f"{text} {w.op} ?", [path, w.value]


def select_sql(
    f: CaseFilter,
    *,
    sort: str = "id",
    descending: bool = False,
    limit: int | None = None,
    after: tuple[Any, int] | None = None,
    walk: frozenset[str] = frozenset(),
) -> tuple[str, list[Any]]:
    """The SELECT behind `select` (also what the query-plan test inspects)."""
    where, params = where_sql(f, walk=walk)
    direction = "DESC" if descending else "ASC"
    if after is not None:
        cond, extra = _keyset(sort, descending, after)
        where = (where + " AND " if where else " WHERE ") + cond
        params += extra
    order = f" ORDER BY c.{sort} {direction}" + (f", c.id {direction}" if sort != "id" else "")
    if sort in _NULLS_LAST:  # spelled out, so both backends put the cases without one last either way
        order = f" ORDER BY c.{sort} IS NULL, c.{sort} {direction}, c.id {direction}"
    sql = f"{SELECT}{where}{order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


_NOT_NULL = {"workflow", "status", "priority", "created_at", "updated_at"}
# Sorted with the cases that have none last, ascending or descending (`list --sort due`).
_NULLS_LAST = {"due_at"}
_SUBJECT_REF = re.compile(r"\bs\.")


def _from(where: str) -> str:
    """Join subjects only when a filter needs them: counts stay on the cases' indexes."""
    return "FROM cases c LEFT JOIN subjects s ON s.id = c.subject_id" if _SUBJECT_REF.search(where) else "FROM cases c"


def _keyset(sort: str, descending: bool, after: tuple[Any, int]) -> tuple[str, list[Any]]:
    """Rows after the cursor (value, id) in the sort order; SQLite puts NULLs first ascending
    (except for the `_NULLS_LAST` columns, which say so in their ORDER BY)."""
    value, last_id = after
    op = "<" if descending else ">"
    if sort == "id":
        return f"c.id {op} ?", [last_id]
    col = f"c.{sort}"
    if sort in _NOT_NULL:  # a plain row-value range, which the column's index serves
        return f"({col}, c.id) {op} (?, ?)", [value, last_id]
    if sort in _NULLS_LAST:  # the NULLs come last in either direction
        if value is None:
            return f"({col} IS NULL AND c.id {op} ?)", [last_id]
        return f"(({col} IS NOT NULL AND ({col}, c.id) {op} (?, ?)) OR {col} IS NULL)", [value, last_id]
    if value is None:
        if descending:  # NULLs come last: only the NULLs after this id remain
            return f"({col} IS NULL AND c.id < ?)", [last_id]
        return f"(({col} IS NULL AND c.id > ?) OR {col} IS NOT NULL)", [last_id]
    cond = f"({col}, c.id) {op} (?, ?)"
    if descending:
        cond = f"({cond} OR {col} IS NULL)"
    return cond, [value, last_id]


def select(
    conn: sqlite3.Connection,
    f: CaseFilter,
    *,
    sort: str = "id",
    descending: bool = False,
    limit: int | None = None,
    after: tuple[Any, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Cases matching `f`, streamed. `after` is a keyset cursor (sort value, id)."""
    walk = walk_forms(conn, f, sort=sort, descending=descending, limit=limit)
    sql, params = select_sql(f, sort=sort, descending=descending, limit=limit, after=after, walk=walk)
    return dicts(conn, sql, params)


# A page walks the cases in id order (checking the filter on each row) instead
# of reading a filter's whole index range and sorting it, when a probe shows
# that the filter matches so many cases that the walk stops after about
# WALK_ROWS rows. The probes read at most a few thousand index entries.
WALK_ROWS = 20_000
_DUE_PROBE = 1_000


def walk_forms(
    conn: sqlite3.Connection, f: CaseFilter, *, sort: str = "id", descending: bool = False, limit: int | None = None
) -> frozenset[str]:
    """Which dense filters of `f` a page should check row by row (see `where_sql`'s `walk`)."""
    if sort != "id" or limit is None or limit > WALK_ROWS // 100:
        return frozenset()
    out = set()
    due = f.overdue_at or f.due_before
    if due and not descending:
        # Open cases fall due roughly in creation (= id) order, so when a thousand
        # or more are past due the first open cases in id order are the due ones.
        op = "<" if f.overdue_at else "<="
        n = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM cases WHERE final = 0 AND due_at IS NOT NULL "
            f"AND due_at {op} ? LIMIT ?) AS probe",
            (due, _DUE_PROBE),
        ).fetchone()[0]
        if n >= _DUE_PROBE:
            out.add("due")
    if f.country is not None:
        # Walk when the country's share of subjects s gives limit / s <= WALK_ROWS.
        total = conn.execute("SELECT max(id) FROM subjects").fetchone()[0] or 0
        need = max(1, -(-limit * total // WALK_ROWS))
        n = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM subjects WHERE country = ? LIMIT ?) AS probe", (f.country, need)
        ).fetchone()[0]
        if total and n >= need:
            out.add("country")
    return frozenset(out)


def count(conn: sqlite3.Connection, f: CaseFilter) -> int:
    where, params = where_sql(f, ordered=False)
    return conn.execute(f"SELECT count(*) {_from(where)}{where}", params).fetchone()[0]


def count_by(conn: sqlite3.Connection, f: CaseFilter, column: str) -> list[tuple[Any, int]]:
    """Counts grouped by one case column (status, workflow, assignee, team)."""
    if column not in ("status", "workflow", "assignee", "team", "priority", "final"):
        raise ValueError(column)
    where, params = where_sql(f, ordered=False)
    sql = f"SELECT c.{column}, count(*) {_from(where)}{where} GROUP BY c.{column} ORDER BY c.{column}"
    return [(r[0], r[1]) for r in conn.execute(sql, params)]


def event_count(conn: sqlite3.Connection, case_id: int) -> int:
    return conn.execute("SELECT count(*) FROM events WHERE case_id = ?", (case_id,)).fetchone()[0]


def exists(conn: sqlite3.Connection, case_id: int) -> bool:
    return conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is not None


def status_of(conn: sqlite3.Connection, case_id: int) -> str | None:
    row = conn.execute("SELECT status FROM cases WHERE id = ?", (case_id,)).fetchone()
    return row[0] if row else None
