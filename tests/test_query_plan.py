"""No list filter scans the cases table (EXPLAIN QUERY PLAN on the real SQL).

The one exception, by design: `--where data.PATH=VALUE` looks inside each
case's JSON data, which no index covers (documented in the README).
"""

from __future__ import annotations

from datetime import UTC

import pytest
from casectl.filters import CaseFilter, WhereClause
from casectl.store import cases as case_store
from casectl.store import chain, connect

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
    # Module-scoped, so before the per-test environment: its chain key stays in the temporary folder.
    folder = tmp_path_factory.mktemp("plan")
    return connect(folder / "p.db", create=True, key_source=chain.KeySource(None, None, folder / "keys"))


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
    sql, params = case_store.select_sql(
        CaseFilter(), sort="created_at", descending=True, limit=50, after=("2026-01-01T00:00:00Z", 10)
    )
    assert any("idx_cases_created_at" in s for s in plan(conn, sql, params))
    sql, params = case_store.select_sql(CaseFilter(statuses=("open",)), limit=50, after=(None, 10))
    steps = plan(conn, sql, params)
    assert not any(s.startswith("SCAN c") for s in steps) and not any("TEMP B-TREE" in s for s in steps), steps


def test_walk_forms_only_for_dense_filters_and_never_sort(conn):
    """`select` walks cases in id order (checking the filter row by row) only when a
    probe shows the filter is dense; then the plan has no sort, so it stops after a page."""
    for f in (CaseFilter(overdue_at=NOW), CaseFilter(due_before=NOW), CaseFilter(country="HK")):
        assert case_store.walk_forms(conn, f, limit=50) == frozenset()  # nothing matches here
    due = case_store.select_sql(CaseFilter(overdue_at=NOW), limit=50, walk=frozenset({"due"}))
    steps = plan(conn, *due)
    assert any("idx_cases_final " in s + " " for s in steps), steps
    country = case_store.select_sql(CaseFilter(country="HK", statuses=("open",)), limit=50, walk=frozenset({"country"}))
    for steps in (plan(conn, *due), plan(conn, *country)):
        assert not any("TEMP B-TREE" in s for s in steps), steps


def test_walk_forms_select_the_same_cases(tmp_path):
    from datetime import datetime

    from casectl import rules
    from casectl.services import workflows as workflow_service

    c = connect(tmp_path / "w.db", create=True)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    workflow_service.ensure_recorded(c, rules.BUILTIN["simple"], now=at, actor="t")
    c.executemany(
        "INSERT INTO subjects (id, name, country, data, created_at, updated_at) VALUES (?, 'x', ?, '{}', 'x', 'x')",
        [(i, "HK" if i % 3 else "GB") for i in range(1, 301)],
    )
    c.executemany(
        "INSERT INTO cases (id, ref, workflow, workflow_version, status, final, subject_id, created_at, "
        "updated_at, due_at) VALUES (?, ?, 'simple', 2, 'open', ?, ?, 'x', 'x', ?)",
        [
            (i, f"R{i}", int(i % 7 == 0), i % 300 + 1, f"2025-{1 + i % 12:02d}-01" if i % 5 else "2027-01-01")
            for i in range(1, 3001)
        ],
    )
    for f in (
        CaseFilter(overdue_at=NOW),
        CaseFilter(due_before=NOW),
        CaseFilter(country="HK"),
        CaseFilter(country="HK", overdue_at=NOW),
    ):
        walk = case_store.walk_forms(c, f, limit=50)
        assert walk, f  # dense here: the walk is chosen
        for after in (None, (None, 1500)):
            a = [r["id"] for r in case_store.dicts(c, *case_store.select_sql(f, limit=50, after=after))]
            b = [r["id"] for r in case_store.select(c, f, limit=50, after=after)]
            assert a == b and len(a) == 50, f
        assert case_store.walk_forms(c, f, limit=None) == frozenset()  # whole lists read the index
        assert case_store.walk_forms(c, f, limit=50, sort="created_at") == frozenset()
    assert case_store.walk_forms(c, CaseFilter(country="FR"), limit=50) == frozenset()
