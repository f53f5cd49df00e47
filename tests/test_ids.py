"""Ids mean one thing: an id form always names that case; an external reference never shadows it."""

from __future__ import annotations

import pytest

from conftest import snapshot


def test_an_id_form_always_names_the_case_not_a_numeric_ref(cli, db, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("ref\n2\n1\n")  # C-1 has ref "2", C-2 has ref "1"
    cli("import", f, "--workflow", "simple")
    cli("approve", "1")
    assert cli.json("show", "C-1", "--json")["status"] == "approved"
    assert cli.json("show", "C-2", "--json")["status"] == "open"
    # The reference is reached explicitly.
    assert cli.json("show", "ref:1", "--json")["id"] == "C-2"
    assert cli.json("show", "ref:2", "--json")["id"] == "C-1"


def test_a_pipe_of_ids_tags_those_cases(cli, db):
    cli("create", "-w", "simple", "--ref", "EXT-9")
    cli("create", "-w", "simple", "--ref", "EXT-1")
    cli("tag", "-", "+x", input="C-1\n")
    assert cli.json("show", "C-1", "--json")["tags"] == ["x"]
    assert cli.json("show", "C-2", "--json")["tags"] == []


@pytest.mark.parametrize("ref", ["C-3", "c3", "C3", " c-3 ", "ref:abc"])
def test_a_ref_that_reads_as_a_case_id_is_refused(cli, db, tmp_path, ref):
    before = snapshot(db)
    r = cli("create", "-w", "simple", "--ref", ref, expect=6)
    assert "ref:" in r.stderr
    f = tmp_path / "r.csv"
    f.write_text(f'ref\n"{ref}"\n')
    r = cli("import", f, "--workflow", "simple", expect=6)
    assert "column ref:" in r.stderr
    assert snapshot(db) == before


@pytest.mark.parametrize("text", ["C-١", "C-１", "١", "C-1x", "S-1"])
def test_only_ascii_digits_make_an_id(cli, db, text):
    cli("create", "-w", "simple")
    r = cli("show", text, expect=3)
    assert "no case" in r.stderr


def test_a_missing_id_is_not_looked_up_as_a_reference(cli, db):
    cli("create", "-w", "simple", "--ref", "12")
    r = cli("show", "12", expect=3)
    assert "no case '12'" in r.stderr and "ref:12" in r.stderr
    assert cli.json("show", "ref:12", "--json")["id"] == "C-1"
