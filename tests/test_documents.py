"""Documents: content-addressed storage, byte-identical export, and bad files
(exit 6, nothing stored)."""

from __future__ import annotations

import hashlib
import os

import pytest

from conftest import raw_connect, snapshot


def count(db_path, table: str) -> int:
    conn = raw_connect(db_path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def case(cli, db):
    return cli(
        "create",
        "-w",
        "kyb",
        "--subject-email",
        "d@example.com",
        "--block",
        "document:passport",
        "--block",
        "document:bank_statement",
        "--block",
        "registry_data:registry_extract",
    ).stdout.strip()


@pytest.fixture
def pdf(tmp_path):
    # Every byte value, NULs and a CRLF included: nothing may be altered on the way.
    content = bytes(range(256)) * 40 + b"\r\n%%EOF\x00"
    path = tmp_path / "passport scan.pdf"
    path.write_bytes(content)
    return path


def test_attach_then_export_is_byte_identical(cli, case, pdf, tmp_path):
    expected = hashlib.sha256(pdf.read_bytes()).hexdigest()
    out = cli.json("attach", case, "passport", str(pdf), "--json")
    assert out["sha256"] == expected and out["size"] == pdf.stat().st_size
    assert out["media_type"] == "application/pdf" and out["filename"] == "passport scan.pdf"
    target = tmp_path / "back.pdf"
    info = cli.json("doc", case, "passport", "-o", str(target), "--json")
    assert info["sha256"] == expected
    assert hashlib.sha256(target.read_bytes()).hexdigest() == expected
    assert target.read_bytes() == pdf.read_bytes()


def test_export_to_stdout_and_into_a_directory(cli, case, pdf, tmp_path, run):
    cli("attach", case, "passport", str(pdf))
    r = run("doc", case, "passport", "-o", "-", input=b"")
    assert r.returncode == 0 and r.stdout == pdf.read_bytes()
    outdir = tmp_path / "out"
    outdir.mkdir()
    cli("doc", case, "passport", "-o", str(outdir))
    assert (outdir / "passport scan.pdf").read_bytes() == pdf.read_bytes()


def test_same_bytes_are_stored_once(cli, case, pdf, tmp_path, db):
    copy = tmp_path / "statement.pdf"
    copy.write_bytes(pdf.read_bytes())
    first = cli.json("attach", case, "passport", str(pdf), "--json")
    second = cli.json("attach", case, "bank_statement", str(copy), "--json")
    other = cli("create", "-w", "kyb", "--block", "document:id").stdout.strip()
    cli("attach", other, "id", str(pdf))
    assert first["stored"] == "new" and second["stored"] == "already stored"
    assert count(db, "documents") == 1
    assert count(db, "attachments") == 3
    listing = cli.json("doc", case, "bank_statement", "--json")
    assert [(a["filename"], a["sha256"]) for a in listing] == [("statement.pdf", first["sha256"])]


def test_media_type_guessed_from_the_name(cli, case, tmp_path):
    for name, media in (
        ("a.png", "image/png"),
        ("b.jpg", "image/jpeg"),
        ("c.bin", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ):
        p = tmp_path / name
        p.write_bytes(b"x" + name.encode())
        assert cli.json("attach", case, "passport", str(p), "--json")["media_type"] == media
    rows = cli.json("doc", case, "passport", "--json")
    assert [r["filename"] for r in rows] == ["a.png", "b.jpg", "c.bin", "noext"]
    blocks = {b["name"]: b for b in cli.json("blocks", case, "--json")["blocks"]}
    assert blocks["passport"]["document"]["filename"] == "noext"
    assert blocks["passport"]["summary"].endswith("(4 versions)")


@pytest.mark.parametrize("kind", ["missing", "directory", "dangling_link"])
def test_bad_files_are_refused_and_nothing_is_stored(cli, case, db, tmp_path, kind):
    if kind == "missing":
        path, message = tmp_path / "nope.pdf", "no such file"
    elif kind == "directory":
        path, message = tmp_path, "is a directory, not a file"
    else:
        path, message = tmp_path / "link.pdf", "no such file"
        os.symlink(tmp_path / "gone.pdf", path)
    before = snapshot(db)
    code = 6 if kind == "directory" else 3  # a missing input file is "not found", as for import
    r = cli("attach", case, "passport", str(path), expect=code)
    assert message in r.stderr and str(path) in r.stderr
    r = cli("block", case, "passport", "received", str(path), expect=code)
    assert snapshot(db) == before


def test_history_records_the_attachment(cli, case, pdf):
    cli("attach", case, "passport", str(pdf), "--actor", "ann")
    events = [e for e in cli.json("history", case, "--json")["events"] if e["kind"] == "document.attached"]
    assert len(events) == 1 and events[0]["actor"] == "ann"
    assert events[0]["data"]["sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert "passport: passport scan.pdf (application/pdf" in cli("history", case).stdout
    assert cli.json("show", case, "--json")["last_editor"] == "ann"


def test_attaching_to_an_approved_block_withdraws_the_approval(cli, case, pdf, tmp_path):
    cli("attach", case, "passport", str(pdf))
    cli("block", case, "passport", "approve")
    newer = tmp_path / "newer.pdf"
    newer.write_bytes(b"%PDF newer")
    cli("attach", case, "passport", str(newer))
    passport = [b for b in cli.json("blocks", case, "--json")["blocks"] if b["name"] == "passport"][0]
    assert passport["status"] is None and passport["decided_by"] is None
    assert "approval withdrawn" in cli("history", case).stdout


def test_attach_refusals(cli, case, pdf, db):
    before = snapshot(db)
    r = cli("attach", case, "registry_extract", str(pdf), expect=4)
    assert "registry_data blocks are read-only" in r.stderr
    r = cli("attach", case, "data", str(pdf), expect=4)
    assert "the case's own data" in r.stderr
    r = cli("attach", case, "nope", str(pdf), expect=3)
    assert "has no block 'nope'" in r.stderr
    assert snapshot(db) == before


def test_doc_without_a_document(cli, case, tmp_path):
    r = cli("doc", case, "passport", "-o", str(tmp_path / "x.pdf"), expect=3)
    assert "has no document; attach one with `casectl attach" in r.stderr
    assert not (tmp_path / "x.pdf").exists()
    r = cli("doc", case, "passport", "--json")
    assert r.stdout.strip() == "[]"


def test_doc_output_to_an_unwritable_place(cli, case, pdf, tmp_path):
    cli("attach", case, "passport", str(pdf))
    r = cli("doc", case, "passport", "-o", str(tmp_path / "no" / "such" / "dir" / "x.pdf"), expect=6)
    assert "cannot write it" in r.stderr
