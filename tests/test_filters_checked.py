"""Filter values are checked (an unknown status, workflow, priority, country or parent is an
error, never an empty answer), and `--where` takes comparison and contains operators.
Issue 15, items 3 and 4."""

from __future__ import annotations

import json

import pytest

FILTERED = [["list"], ["export"], ["stats"], ["search", "ada"], ["report", "-o", "x.pdf"], ["take"]]


@pytest.fixture
def cases(cli, db):
    people = [
        ("ada@example.com", "Ada Lovelace", "GB", '{"risk": "high", "score": 72, "company": {"reg_no": "123"}}'),
        ("alan@example.com", "Alan Turing", "GB", '{"risk": "low", "score": 9}'),
        ("grace@example.com", "Grace Hopper", "US", '{"risk": "medium", "score": 40.5, "since": "2024-03-01"}'),
        ("kurt@example.com", "Kurt Gödel", "AT", '{"score": "n/a"}'),
    ]
    for email, name, country, data in people:
        cli(
            "create",
            "--workflow",
            "kyb",
            "--subject-email",
            email,
            "--subject-name",
            name,
            "--country",
            country,
            "--data",
            data,
        )
    cli("create", "--workflow", "kyc")  # no subject
    return db


def ids(cli, *args):
    return [row["id"] for row in cli.json("list", *args, "--json")]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--status", "manual-review"], 2, ["'manual-review' is not a status", "did you mean 'manual_review'"]),
        (["--workflow", "kybb"], 3, ["no workflow 'kybb'", "did you mean 'kyb'"]),
        (["--priority", "bogus"], 2, ["'bogus' is not a priority", "low, normal, high, urgent"]),
        (["--priority", "urgnt"], 2, ["did you mean 'urgent'"]),
        (["--country", "ZZ"], 2, ["'ZZ' is not an ISO 3166 country code"]),
        (["--country", "UK"], 2, ["did you mean GB"]),
        (["--country", "Germany"], 2, ["did you mean DE"]),
        (["--parent", "C-99"], 3, ["no case C-99"]),
        (["--workflow", "kyc", "--status", "collection_flow"], 2, ["not a status of workflow kyc"]),
    ],
)
def test_unknown_filter_values_are_errors_with_a_suggestion(cli, cases, args, code, words):
    r = cli("list", *args, expect=code)
    assert r.stdout == ""
    line = r.stderr.splitlines()[0]
    assert line.startswith("casectl: error: ")
    for w in words:
        assert w in line, line


@pytest.mark.parametrize("command", FILTERED, ids=lambda c: c[0])
def test_every_filtering_command_checks_its_filters(cli, cases, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "did you mean 'manual_review'" in cli(*command, "--status", "manual-review", expect=2).stderr
    assert "no workflow 'kybb'" in cli(*command, "--workflow", "kybb", expect=3).stderr
    assert not (tmp_path / "x.pdf").exists()


def test_a_saved_view_is_checked_when_saved(cli, cases):
    assert "did you mean 'manual_review'" in cli("views", "add", "weekly", "--status", "manual-review", expect=2).stderr
    assert "weekly" not in [v["name"] for v in cli.json("views", "list", "--json")]


def test_known_values_still_select(cli, cases):
    assert ids(cli, "--country", "gb") == ["C-1", "C-2"]
    assert ids(cli, "--status", "collection_flow", "--workflow", "kyb") == ["C-1", "C-2", "C-3", "C-4"]
    assert ids(cli, "--priority", "urgent") == []  # a real level nobody has: empty, exit 0
    assert ids(cli, "--parent", "C-1") == []


def test_a_status_left_by_an_older_workflow_version_is_still_accepted(cli, cases, db_path):
    from conftest import raw_connect

    conn = raw_connect(db_path)
    conn.execute("UPDATE cases SET status = 'retired_status' WHERE id = 5")
    conn.commit()
    conn.close()
    assert ids(cli, "--status", "retired_status") == ["C-5"]


@pytest.mark.parametrize(
    "where, expected",
    [
        ("risk=high", ["C-1"]),
        ("risk!=high", ["C-2", "C-3", "C-4", "C-5"]),  # missing counts as different
        ("score>10", ["C-1", "C-3"]),  # numbers compare as numbers; "n/a" never matches
        ("score>=72", ["C-1"]),
        ("score<40.5", ["C-2"]),
        ("score<=40.5", ["C-2", "C-3"]),
        ("since<2025-01-01", ["C-3"]),  # text: ISO dates compare rightly
        ("risk~IG", ["C-1"]),  # contains, ASCII case ignored
        ("company.reg_no=123", ["C-1"]),
        ("subject.name~ada", ["C-1"]),
        ("subject.name~LOVE", ["C-1"]),
        ("subject.name=Ada Lovelace", ["C-1"]),
        ("subject.name!=Ada Lovelace", ["C-2", "C-3", "C-4", "C-5"]),
        ("subject.email=ADA@example.com", ["C-1"]),
        ("subject.email~example.com", ["C-1", "C-2", "C-3", "C-4"]),
        ("subject.name>H", ["C-4"]),
        ("risk~%", []),  # LIKE's wildcards are literal characters
        ("risk~_", []),
    ],
)
def test_where_operators(cli, cases, where, expected):
    assert ids(cli, "--where", where) == expected


def test_where_clauses_combine_and_round_trip_through_a_view(cli, cases):
    assert ids(cli, "--where", "score>5", "--where", "risk!=low") == ["C-1", "C-3"]
    cli("views", "add", "risky", "--where", "score>=40", "--where", "subject.name~o")
    assert ids(cli, "--view", "risky") == ["C-1", "C-3"]
    saved = json.dumps(cli.json("views", "list", "--json"))
    assert "score>=40" in saved and "subject.name~o" in saved


@pytest.mark.parametrize("bad", ["risk", "=high", "ri sk=high", "data.=x"])
def test_a_bad_where_is_a_usage_error(cli, cases, bad):
    r = cli("list", "--where", bad, expect=2)
    assert r.stderr.startswith("casectl: error: --where")
