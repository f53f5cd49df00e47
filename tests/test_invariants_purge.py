"""Retention never splits a family: a parent and its KYC children are purged together or not at all.

Also: purge refuses a cut-off in the future, and `db check` names a kyc block
whose child case is missing.
"""

from __future__ import annotations

import json

import pytest

from conftest import raw_connect, snapshot

OLD, LATER, TODAY = "2020-01-01T00:00:00Z", "2022-06-01T00:00:00Z", "2026-01-01T00:00:00Z"
CUTOFF = "2021-01-01"


@pytest.fixture
def family(cli, db, tmp_path, monkeypatch):
    """A kyb case C-1 with two KYC children: C-2 (Mei) and C-3 (Ann), all opened long ago."""
    monkeypatch.setenv("CASECTL_NOW", OLD)
    for name in ("mei", "ann"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name.title(), "email": f"{name}@example.com"}))
    parent = cli(
        "create",
        "-w",
        "kyb",
        "--subject-email",
        "company@example.com",
        "--block",
        f"kyc:ubo1=@{tmp_path / 'mei.json'}",
        "--block",
        f"kyc:ubo2=@{tmp_path / 'ann.json'}",
    ).stdout.strip()
    children = [c["id"] for c in cli.json("list", "--json") if c["id"] != parent]
    assert parent == "C-1" and children == ["C-2", "C-3"]
    return monkeypatch


def ids(cli) -> list[str]:
    return [c["id"] for c in cli.json("list", "--json")]


def purge(cli, *extra: str, expect: int = 0):
    return cli("purge", "--closed-before", CUTOFF, *extra, expect=expect)


def assert_purges_nothing(cli, db):
    before = ids(cli)
    assert cli.json("purge", "--closed-before", CUTOFF, "--dry-run", "--json")["cases"] == []
    done = cli.json("purge", "--closed-before", CUTOFF, "--json")
    assert done["cases"] == [] and done["count"] == 0
    assert ids(cli) == before
    assert cli.json("db", "check", "--json")["ok"]


def test_an_old_closed_child_of_an_open_parent_stays(cli, family, db):
    family.setenv("CASECTL_NOW", OLD)
    cli("event", "C-2", "verification_passed")  # Mei's KYC approved long ago; the parent is still open
    family.setenv("CASECTL_NOW", TODAY)
    assert_purges_nothing(cli, db)
    ubo1 = next(b for b in cli.json("blocks", "C-1", "--json")["blocks"] if b["name"] == "ubo1")
    assert ubo1["child"] == "C-2" and ubo1["child_status"] == "approved"
    assert "C-2 Mei: approved" in cli("blocks", "C-1").stdout


def test_a_parent_closed_after_the_cutoff_keeps_its_old_closed_children(cli, family, db):
    family.setenv("CASECTL_NOW", OLD)
    cli("event", "C-2", "verification_passed")
    cli("event", "C-3", "verification_failed")
    cli("event", "C-1", "collection_completed")
    family.setenv("CASECTL_NOW", LATER)
    cli("reject", "C-1", "--reason", "company dissolved")  # the parent closed after the cut-off
    family.setenv("CASECTL_NOW", TODAY)
    assert_purges_nothing(cli, db)


def test_a_family_closed_partly_after_the_cutoff_stays(cli, family, db):
    family.setenv("CASECTL_NOW", OLD)
    cli("event", "C-2", "verification_passed")
    family.setenv("CASECTL_NOW", LATER)
    cli("event", "C-3", "verification_failed")  # closed, but after the cut-off
    cli("event", "C-1", "collection_completed")
    family.setenv("CASECTL_NOW", TODAY)
    assert_purges_nothing(cli, db)


def test_a_family_closed_before_the_cutoff_goes_together(cli, family, db):
    family.setenv("CASECTL_NOW", OLD)
    cli("event", "C-2", "verification_passed")
    cli("event", "C-3", "verification_failed")
    cli("event", "C-1", "collection_completed")  # both KYCs concluded: to manual review
    cli("reject", "C-1", "--reason", "company dissolved")
    family.setenv("CASECTL_NOW", TODAY)
    loner = cli("create", "-w", "simple").stdout.strip()
    dry = cli.json("purge", "--closed-before", CUTOFF, "--dry-run", "--json")
    assert dry["cases"] == ["C-1", "C-2", "C-3"]
    done = cli.json("purge", "--closed-before", CUTOFF, "--json")
    assert done["cases"] == dry["cases"] and done["deleted"]["cases"] == 3
    assert ids(cli) == [loner]
    assert cli.json("db", "check", "--json")["ok"]


def test_purge_refuses_a_cutoff_in_the_future(cli, family, db):
    family.setenv("CASECTL_NOW", OLD)
    cli("event", "C-2", "verification_passed")
    cli("event", "C-3", "verification_failed")
    cli("event", "C-1", "collection_completed")  # both KYCs concluded: to manual review
    cli("reject", "C-1", "--reason", "company dissolved")
    family.setenv("CASECTL_NOW", "2020-06-01T12:00:00Z")  # the pinned clock is what "now" means
    before = snapshot(db)
    for args in (["--closed-before", "2021-01-01"], ["--closed-before", "2020-06-01T12:00:01Z", "--dry-run"]):
        r = cli("purge", *args, expect=6)
        assert "later than now" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr + r.stdout
    assert snapshot(db) == before
    # Exactly now is allowed (and reaches the whole closed family).
    assert cli.json("purge", "--closed-before", "2020-06-01T12:00:00Z", "--json")["count"] == 3


@pytest.mark.parametrize(
    "child",
    [
        None,
        pytest.param(
            99,
            marks=pytest.mark.sqlite_only(
                reason="a block naming a missing case is a hand edit with SQLite's foreign keys off; "
                "PostgreSQL's foreign key refuses it"
            ),
        ),
    ],
    ids=["no-child", "missing-child"],
)
def test_db_check_names_a_kyc_block_whose_child_is_missing(cli, family, db, child):
    assert cli.json("db", "check", "--json")["ok"]
    conn = raw_connect(db)  # on SQLite foreign keys off: as an old purge or a hand edit would leave it
    with conn:
        conn.execute("UPDATE blocks SET child_case_id = ? WHERE name = 'ubo1'", (child,))
    conn.close()
    r = cli("db", "check", "--json", expect=1)
    problems = json.loads(r.stdout)["problems"]
    named = [p for p in problems if "kyc block ubo1" in p and "C-1" in p]
    assert named, problems
    assert ("C-99, which is missing" if child else "no KYC case") in named[0]
    assert "problem: kyc block ubo1" in cli("db", "check", expect=1).stdout
