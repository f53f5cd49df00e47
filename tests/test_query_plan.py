"""No list filter scans the cases table (EXPLAIN QUERY PLAN on the real SQL).

The one exception, by design: `--where data.PATH=VALUE` looks inside each
case's JSON data, which no index covers (documented in the README).
"""

from __future__ import annotations

import pytest

from casectl.filters import CaseFilter, WhereClause
from casectl.store import cases as case_store, connect

NOW = "2026-01-01T00:00:00Z"
FILTERS = {
    "status": CaseFilter(statuses=("open",)),
    "statuses": CaseFilter(statuses=("open", "pending")),
    "workflow": CaseFilter(workflow="kyb"),
    "assignee/mine": CaseFilter(assignee="ann"),
    "team": CaseFilter(team="ops"),
    "tag": CaseFilter(tags=("vip",)),
    "country": CaseFilter(country="HK"),
    "priority": CaseFilter(priority="urgent"),
    "created range": CaseFilter(created_since=NOW, created_until=NOW),
    "created since": CaseFilter(created_since=NOW),
    "decided range": CaseFilter(decided_since=NOW, decided_until=NOW),
    "parent": CaseFilter(parent=1),
    "subject": CaseFilter(subject_id=1),
    "unassigned": CaseFilter(unassigned=True),
    "open": CaseFilter(open_only=True),
    "closed": CaseFilter(closed_only=True),
    "overdue": CaseFilter(overdue_at=NOW),
    "due within": CaseFilter(due_before=NOW),
    "ids": CaseFilter(ids=(1, 2)),
    "subject email": CaseFilter(where=(WhereClause.parse("subject.email=a@b.c"),)),
    "subject name": CaseFilter(where=(WhereClause.parse("subject.name=Ada"),)),
    "status+workflow": CaseFilter(statuses=("open",), workflow="simple"),
    "assignee+status": CaseFilter(assignee="ann", statuses=("open",)),
    "workflow+open": CaseFilter(workflow="kyb", open_only=True),
}


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    return connect(tmp_path_factory.mktemp("plan") / "p.db", create=True)


def plan(conn, sql, params):
    return [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.mark.parametrize("name", FILTERS)
def test_no_filter_scans_cases(conn, name):
    f = FILTERS[name]
    sql, params = case_store.select_sql(f, limit=50)
    steps = plan(conn, sql, params)
    assert not [s for s in steps if s.startswith("SCAN c") or s.startswith("SCAN cases")], (name, steps)
    where, wparams = case_store.where_sql(f)
    steps = plan(conn, f"SELECT count(*) {case_store._from(where)}{where}", wparams)
    assert not [s for s in steps if s.startswith("SCAN c ") or s == "SCAN c"], (name, steps)


def test_deep_keyset_pages_seek(conn):
    sql, params = case_store.select_sql(CaseFilter(), sort="created_at", descending=True, limit=50,
                                        after=("2026-01-01T00:00:00Z", 10))
    assert any("idx_cases_created_at" in s for s in plan(conn, sql, params))
    sql, params = case_store.select_sql(CaseFilter(statuses=("open",)), limit=50, after=(None, 10))
    steps = plan(conn, sql, params)
    assert not any(s.startswith("SCAN c") for s in steps) and not any("TEMP B-TREE" in s for s in steps), steps
