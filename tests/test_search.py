"""`casectl search`: FTS5 over id, ref, name, email, dob; prefixes, accents, ranking, triggers."""

from __future__ import annotations

from conftest import raw_connect, snapshot


def ids(r):
    return r.stdout.split()


def test_search_by_each_field_with_prefix_and_accents(cli, db):
    cli(
        "create",
        "--workflow",
        "simple",
        "--subject-name",
        "Zoë Müller",
        "--subject-email",
        "zoe@acme.example",
        "--subject-dob",
        "1990-05-12",
        "--ref",
        "ACME-77",
    )
    cli("create", "--workflow", "kyb", "--subject-name", "Bob Smith", "--subject-email", "bob@other.example")
    assert ids(cli("search", "zoe", "--ids")) == ["C-1"]
    assert ids(cli("search", "MULL", "--ids")) == ["C-1"]  # prefix, case and accent folded
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
    cli("create", "--workflow", "simple", "--subject-name", "Old Name", "--subject-email", "x@y.example")
    c = raw_connect(db)
    try:
        with c:
            c.execute("UPDATE subjects SET name = 'New Person' WHERE id = 1")
            c.execute("UPDATE cases SET ref = 'R-9' WHERE id = 1")
    finally:
        c.close()
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


def test_email_like_words_narrow_then_check_the_whole_phrase(cli, db):
    """A word with punctuation is looked up by its whole leading tokens, then checked as the
    full phrase (same tokenizer): results equal the plain FTS query's, order included."""
    from casectl.filters import CaseFilter
    from casectl.services import search as search_service
    from casectl.store import connect
    from casectl.store import search as search_store

    for name, email in (
        ("Ann Lee", "ann.lee@acme.example"),
        ("Lee Ann", "lee.ann@acme.example"),
        ("Ann Other", "ann@lee.example"),
        ("Zoë Müller", "zoë.müller@acme.example"),
    ):
        cli("create", "--workflow", "simple", "--subject-name", name, "--subject-email", email)
    before = snapshot(db)
    assert ids(cli("search", "ann.lee@ac", "--ids")) == ["C-1"]  # consecutive tokens only
    assert ids(cli("search", "lee@acme", "--ids")) == ["C-1"]  # not lee.ann@acme, not ann@lee
    assert ids(cli("search", "ann@lee.ex", "--ids")) == ["C-3"]
    assert ids(cli("search", "zoe.mull", "--ids")) == ["C-4"]  # accents folded on both sides
    assert ids(cli("search", "ann@acme", "--ids")) == ["C-2"]  # lee.ANN@ACME
    assert ids(cli("search", "acme@ann", "--ids")) == []
    assert ids(cli("search", "ann.lee@acme", "--workflow", "kyb", "--ids")) == []
    # The check runs in memory, never in the user's file. (Compared by content: closing the
    # last connection may checkpoint the WAL into the file, which changes its bytes, not its data.)
    assert snapshot(db) == before
    conn = connect(db)
    for text in (
        "ann.lee@ac",
        "lee@acme",
        "ann@lee.ex",
        "zoe.mull",
        "ann@acme",
        "acme@ann",
        "acme.example",
        "ann lee@acme",
    ):
        narrow = search_service.narrow_query(text)
        assert narrow is not None
        match = search_service.match_query(text)
        full = [c["id"] for c in search_store.search(conn, match, CaseFilter(), limit=50)]
        fast = [c["id"] for c in search_store.search(conn, match, CaseFilter(), limit=50, narrow=narrow)]
        assert fast == full, text
    assert search_service.narrow_query("smith") is None  # nothing cheaper than the word itself
