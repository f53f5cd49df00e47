"""Subjects matched with care (issue 16, item 7): an email that names an existing subject with
another name, date of birth or entity type is refused (exit 5, naming both) unless the command
says `--subject existing` or `--subject new`; an import takes the choice per file or per row."""

from __future__ import annotations

import json

import pytest

from conftest import snapshot

CONFLICT, INVALID = 5, 6


@pytest.fixture
def ada(cli, db):
    cli(
        "create",
        "--workflow",
        "kyb",
        "--subject-email",
        "ada@example.com",
        "--subject-name",
        "Ada Lovelace",
        "--subject-dob",
        "1815-12-10",
    )
    return db


def subjects(cli) -> list[dict]:
    return cli.json("subjects", "list", "--json")


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--subject-name", "Ada King"], "whose name is 'Ada Lovelace', not 'Ada King'"),
        (["--subject-dob", "1816-01-01"], "date of birth is 1815-12-10, not 1816-01-01"),
        (["--entity-type", "company"], "entity type is person, not company"),
    ],
)
def test_a_different_subject_behind_a_known_email_is_refused(run, ada, extra, words):
    before = snapshot(ada)
    r = run("create", "--workflow", "kyb", "--subject-email", "ADA@example.com", *extra)
    assert r.returncode == CONFLICT and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert "subject S-1" in line and words in line
    assert "--subject existing" in line and "--subject new" in line
    assert snapshot(ada) == before


def test_the_same_person_is_reused_and_unknown_details_filled_in(cli, ada):
    cli("create", "--workflow", "kyb", "--subject-email", "ada@example.com", "--subject-name", "  ada   LOVELACE ")
    cli("create", "--workflow", "kyb", "--subject-email", "ada@example.com", "--country", "GB")
    (only,) = subjects(cli)
    assert only["name"] == "Ada Lovelace" and only["country"] == "GB"
    assert [c["subject_id"] for c in cli.json("list", "--json")] == ["S-1"] * 3


def test_subject_existing_attaches_the_case_and_keeps_their_details(run, cli, ada):
    r = run("create", "--workflow", "kyb", "--subject-email", "ada@example.com", "--subject-name", "Ada King",
            "--subject", "existing")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (only,) = subjects(cli)
    assert only["name"] == "Ada Lovelace" and only["dob"] == "1815-12-10"
    assert cli.json("show", r.stdout.strip(), "--json")["subject"]["id"] == "S-1"


def test_subject_new_makes_another_subject_who_shares_the_email(run, cli, ada):
    r = run("create", "--workflow", "kyb", "--subject-email", "ada@example.com", "--subject-name", "Ada King",
            "--subject", "new")  # fmt: skip
    assert r.returncode == 0, r.stderr
    names = {s["id"]: (s["name"], s["email"]) for s in subjects(cli)}
    assert names == {"S-1": ("Ada Lovelace", "ada@example.com"), "S-2": ("Ada King", "ada@example.com")}
    assert cli.json("show", r.stdout.strip(), "--json")["subject"]["id"] == "S-2"
    # The email still finds the first subject.
    cli("create", "--workflow", "kyb", "--subject-email", "ada@example.com", "--subject-name", "Ada Lovelace")
    assert [c["subject_id"] for c in cli.json("list", "--json")] == ["S-1", "S-2", "S-1"]


def test_a_bad_subject_choice_is_a_usage_error(run, ada):
    r = run("create", "--workflow", "kyb", "--subject-email", "ada@example.com", "--subject", "maybe")
    assert r.returncode == 2 and "'maybe' is not one of 'existing', 'new'" in r.stderr


CSV = (
    "ref,subject_email,subject_name{extra_header}\n"
    "R1,grace@example.com,Grace Hopper{extra1}\n"
    "R2,ada@example.com,Ada King{extra2}\n"
)


def write_csv(tmp_path, extra_header="", extra1="", extra2=""):
    path = tmp_path / "people.csv"
    path.write_text(CSV.format(extra_header=extra_header, extra1=extra1, extra2=extra2), encoding="utf-8")
    return path


def test_an_import_row_with_a_different_subject_refuses_the_file(run, ada, tmp_path):
    before = snapshot(ada)
    r = run("import", write_csv(tmp_path), "--workflow", "kyb", "--json")
    assert r.returncode == CONFLICT
    assert "case with ref R2" in r.stderr and "Ada Lovelace" in r.stderr and "Ada King" in r.stderr
    assert json.loads(r.stdout)["code"] == CONFLICT
    assert snapshot(ada) == before  # all or nothing: R1 is not imported either


@pytest.mark.parametrize("choice, subject_of_r2", [("existing", "S-1"), ("new", "S-3")])
def test_the_import_takes_the_choice_for_the_file(run, cli, ada, tmp_path, choice, subject_of_r2):
    r = run("import", write_csv(tmp_path), "--workflow", "kyb", "--subject", choice)
    assert r.returncode == 0, r.stderr
    by_ref = {c["ref"]: c["subject_id"] for c in cli.json("list", "--json") if c["ref"]}
    assert by_ref == {"R1": "S-2", "R2": subject_of_r2}


def test_the_import_takes_the_choice_per_row(run, cli, ada, tmp_path):
    path = write_csv(tmp_path, ",subject_match", ",", ",new")
    r = run("import", path, "--workflow", "kyb", "--subject", "existing")
    assert r.returncode == 0, r.stderr
    by_ref = {c["ref"]: c["subject_id"] for c in cli.json("list", "--json") if c["ref"]}
    assert by_ref == {"R1": "S-2", "R2": "S-3"}  # the row's "new" wins over the file's "existing"


def test_a_bad_subject_match_cell_is_a_row_error(run, ada, tmp_path):
    before = snapshot(ada)
    r = run("import", write_csv(tmp_path, ",subject_match", ",maybe", ","), "--workflow", "kyb")
    assert r.returncode == INVALID
    assert "people.csv:2: column subject_match: 'maybe' is not one of existing, new" in r.stderr
    assert snapshot(ada) == before
