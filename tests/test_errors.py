"""Errors scripts can read (issue 15, item 5): one line `casectl: error: ...` and a hint for
every usage error, a JSON object on stdout when JSON was asked for, one code per concept."""

from __future__ import annotations

import json

import pytest

from conftest import snapshot

USAGE = [
    (["list", "--bogus"], "no such option '--bogus'", "casectl list [OPTIONS]"),
    (["list", "--limit", "x"], "invalid value for '--limit'", "casectl list [OPTIONS]"),
    (["show"], "missing argument 'ID_OR_REF'", "casectl show [OPTIONS] ID_OR_REF"),
    (["lst"], "no command 'lst'; did you mean 'list'?", "casectl [OPTIONS] COMMAND"),
    (["--bogus"], "no such option '--bogus'", "casectl [OPTIONS] COMMAND"),
    (["workflows", "validate"], "missing argument 'FILE'", "casectl workflows validate [OPTIONS] FILE"),
    (["workflows", "nope"], "no such command 'nope'", "casectl workflows [OPTIONS] COMMAND"),
]


@pytest.mark.parametrize("args, message, usage", USAGE, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_usage_error_is_one_line_and_a_hint(run, db, args, message, usage):
    r = run(*args)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("casectl: error: ") and message in lines[0], lines[0]
    assert lines[1].startswith("  usage: ") and usage in lines[1] and "--help" in lines[1], lines[1]
    assert "Traceback" not in r.stderr and "Try '" not in r.stderr


def error_object(stdout: str) -> dict:
    doc = json.loads(stdout.strip().splitlines()[-1])
    assert set(doc) >= {"error", "code", "name", "details"}
    assert isinstance(doc["error"], str) and isinstance(doc["code"], int) and isinstance(doc["details"], list)
    return doc


@pytest.mark.parametrize(
    "args, code, name",
    [
        (["show", "C-99", "--json"], 3, "not_found"),
        (["list", "--status", "nope", "--json"], 2, "usage"),
        (["list", "--limit", "x", "--json"], 2, "usage"),
        (["export", "--format", "json", "--workflow", "kybb"], 3, "not_found"),
        (["export", "--format=ndjson", "--priority", "bogus"], 2, "usage"),
        (["act", "C-1", "nope", "--json"], 4, "not_allowed"),
    ],
)
def test_with_json_an_error_is_also_a_json_object_on_stdout(run, cli, db, args, code, name):
    cli("create", "--workflow", "kyb")
    r = run(*args)
    assert r.returncode == code, r.stderr
    doc = error_object(r.stdout)
    assert (doc["code"], doc["name"]) == (code, name)
    assert r.stderr.startswith(f"casectl: error: {doc['error']}")


def test_without_json_an_error_prints_nothing_on_stdout(run, db):
    r = run("show", "C-99")
    assert r.returncode == 3 and r.stdout == ""


def test_import_json_reports_every_error_of_a_row_on_stdout(run, db, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "ref,subject_email,subject_name,country,subject_dob,priority\n"
        "R1,not-an-email,Ada,UK,2999-01-01,bogus\n"
        "R2,ok@example.com,Bob,DE,1990-01-01,high\n",
        encoding="utf-8",
    )
    before = snapshot(db)
    r = run("import", csv, "--workflow", "kyb", "--json")
    assert r.returncode == 6
    doc = error_object(r.stdout)
    row2 = [d for d in doc["details"] if "bad.csv:2:" in d]
    assert len(row2) == 4, doc["details"]  # every problem of the row at once
    joined = "\n".join(row2)
    for column in ("subject_email", "subject_dob", "country", "priority"):
        assert f"column {column}:" in joined
    assert "did you mean GB" in joined
    assert snapshot(db) == before


def test_a_missing_input_file_is_not_found_everywhere(run, cli, db, tmp_path):
    cid = cli("create", "--workflow", "kyb").stdout.strip()
    gone = tmp_path / "gone"
    for args in (
        ["import", gone, "--workflow", "kyb"],
        ["workflows", "validate", gone],
        ["workflows", "add", gone],
        ["attach", cid, "passport", gone],
    ):
        r = run(*args)
        assert r.returncode == 3, (args, r.stderr)
        assert "no such file" in r.stderr


def test_a_missing_reason_is_invalid_input_on_every_path(run, cli, db):
    cid = cli("create", "--workflow", "kyb").stdout.strip()
    cli("event", cid, "collection_completed")
    for args in (["reject", cid], ["act", cid, "reject"]):
        r = run(*args)
        assert r.returncode == 6, (args, r.stderr)
        assert "needs a reason" in r.stderr


def test_workflows_validate_reports_schema_errors_and_lint_problems_together(run, tmp_path):
    from pathlib import Path

    doc = json.loads((Path(__file__).parent.parent / "examples/workflows/rt-default.json").read_text())
    doc["name"], doc["title"] = "mixed", 5  # a schema error
    doc["statuses"].append({"name": "orphan", "label": "Orphan"})  # a lint problem
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    r = run("workflows", "validate", path, "--json")
    assert r.returncode == 6
    details = error_object(r.stdout)["details"]
    assert any("$.title" in d and "not of type 'string'" in d for d in details), details
    assert any("'orphan' is unreachable" in d for d in details), details
    assert "2 problem(s)" in r.stderr


@pytest.mark.parametrize(
    "given, meant",
    [("UK", "GB"), ("Germany", "DE"), ("DEU", "DE"), ("EL", "GR"), ("Russia", "RU")],
)
def test_a_country_error_names_the_code_meant(run, db, given, meant):
    r = run("create", "--workflow", "kyb", "--subject-email", "a@example.com", "--country", given)
    assert r.returncode == 6
    assert f"did you mean {meant}" in r.stderr


def test_no_guess_for_a_country_that_is_nothing_like_one(run, db):
    r = run("create", "--workflow", "kyb", "--subject-email", "a@example.com", "--country", "XQ")
    assert r.returncode == 6
    assert "did you mean" not in r.stderr
