"""`casectl search`: FTS5 over id, ref, name, email, dob; prefixes, accents, ranking, triggers."""

from __future__ import annotations


def ids(r):
    return r.stdout.split()


def test_search_by_each_field_with_prefix_and_accents(cli, db):
    cli("create", "--workflow", "simple", "--subject-name", "Zoë Müller", "--subject-email", "zoe@acme.example",
        "--subject-dob", "1990-05-12", "--ref", "ACME-77")
    cli("create", "--workflow", "kyb", "--subject-name", "Bob Smith", "--subject-email", "bob@other.example")
    assert ids(cli("search", "zoe", "--ids")) == ["C-1"]
    assert ids(cli("search", "MULL", "--ids")) == ["C-1"]          # prefix, case and accent folded
    assert ids(cli("search", "müller zoë", "--ids")) == ["C-1"]
    assert ids(cli("search", "zoe@acme", "--ids")) == ["C-1"]
    assert ids(cli("search", "1990-05", "--ids")) == ["C-1"]
    assert ids(cli("search", "ACME-77", "--ids")) == ["C-1"]
    assert ids(cli("search", "C-2", "--ids")) == ["C-2"]
    assert sorted(ids(cli("search", "example", "--ids"))) == ["C-1", "C-2"]  # ranked, both found
    assert ids(cli("search", "example", "--workflow", "kyb", "--ids")) == ["C-2"]  # with list filters
    assert ids(cli("search", "nobody")) == []


def test_search_output_formats_match_list(cli, db):
    cli("create", "--workflow", "simple", "--subject-name", "Ada Lovelace")
    assert cli.json("search", "ada", "--json") == cli.json("list", "--json")
    assert cli("search", "ada", "--format", "csv").stdout == cli("list", "--format", "csv").stdout


def test_search_index_follows_subject_and_ref_changes(cli, db):
    import sqlite3

    cli("create", "--workflow", "simple", "--subject-name", "Old Name", "--subject-email", "x@y.example")
    with sqlite3.connect(db) as c:
        c.execute("UPDATE subjects SET name = 'New Person' WHERE id = 1")
        c.execute("UPDATE cases SET ref = 'R-9' WHERE id = 1")
    assert ids(cli("search", "old", "--ids")) == []
    assert ids(cli("search", "new pers", "--ids")) == ["C-1"]
    assert ids(cli("search", "R-9", "--ids")) == ["C-1"]


def test_search_ranks_exact_id_first(cli, db):
    for i in range(12):
        cli("create", "--workflow", "simple", "--subject-name", f"Person {i}")
    assert ids(cli("search", "C-1", "--ids"))[0] == "C-1"


def test_search_bad_input(cli, db):
    r = cli("search", "@@@", expect=6)
    assert "no letters or digits" in r.stderr
    r = cli("search", "x", "--format", "xml", expect=2)
    assert "unknown format" in r.stderr
