"""Erasure that erases: after `redact`, the subject's values print as [erased] everywhere, the
chain still verifies, and a byte search of the database file and its WAL (on PostgreSQL: of every
value in every row) finds none of them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from conftest import snapshot

NAME, EMAIL, PHONE = "Ottoline Quarrington", "ottoline.q@example.net", "+44 7700 900461"
WORDS = ("Ottoline", "Quarrington", "ottoline.q", "7700 900461")


def file_bytes(db) -> bytes:
    """What the database holds: the SQLite file and its WAL byte for byte (freed pages too), or
    every value of every row on PostgreSQL (its dead row versions are the server's to vacuum)."""
    if not isinstance(db, Path):
        values = (v for rows in snapshot(db).values() for row in rows for v in row)
        return b"\0".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in values)
    out = db.read_bytes()
    wal = Path(f"{db}-wal")
    if wal.exists():
        out += wal.read_bytes()
    return out


def found_in(blob: bytes) -> list[str]:
    hits = []
    for word in WORDS:
        for encoded in (word.encode("utf-8"), word.encode("utf-16-le"), word.lower().encode("utf-8")):
            if encoded in blob:
                hits.append(word)
    return hits


@pytest.fixture
def subject_case(cli, db, tmp_path):
    """A kyb case that mentions its subject in every kind of free text casectl keeps."""
    cid = cli(
        "create",
        "--workflow",
        "kyb",
        "--subject-name",
        NAME,
        "--subject-email",
        EMAIL,
        "--data",
        json.dumps({"phone": PHONE, "address": {"line1": "1 Quarrington Row"}}),
    ).stdout.strip()
    other = cli("create", "--workflow", "simple", "--subject-email", "someone@example.org").stdout.strip()
    cli("note", cid, f"called {NAME} on {PHONE}")
    cli("note", cid, f"{NAME} sounded nervous", "--private")
    cli("contact", cid, "--subject-line", f"Dear {NAME}", "-m", f"Hello {NAME}, please call {PHONE}")
    cli("block", cid, "add", "document", "passport")
    doc = tmp_path / "passport.pdf"
    doc.write_bytes(f"%PDF-1.4 passport of {NAME}".encode())
    cli("attach", cid, "passport", doc)
    cli("block", cid, "passport", "reupload", "--reason", f"photo of {NAME} is blurry")
    cli("activity", cid, "add", "phone_check")
    cli("activity", cid, "phone_check", "result", f"spoke_to={NAME}", f"number={PHONE}")
    cli("appointment", cid, "add", "2030-01-01T10:00", f"Call with {NAME}", "--with", NAME)
    cli("tag", cid, "+vip")
    second = cli("create", "--workflow", "simple", "--subject-email", EMAIL).stdout.strip()
    cli("act", second, "decline", "--reason", f"{NAME} ({PHONE}) withdrew")
    cli("note", other, "unrelated case, keep me")
    return cid, other


def test_redact_erases_every_copy_and_the_chain_still_holds(cli, db, subject_case, tmp_path):
    cid, other = subject_case
    before = file_bytes(db)
    assert found_in(before), "the test must first see the values it then expects gone"
    cli("redact", EMAIL)
    assert cli("db", "check").exit_code == 0
    history = cli("history", cid, "--format", "table").stdout
    assert "[erased]" in history
    assert not found_in(history.encode())
    shown = cli("show", cid).stdout + cli("history", cid, "--json").stdout
    assert not found_in(shown.encode()), shown
    package = tmp_path / "p.zip"
    cli("export", cid, "--package", package)
    with zipfile.ZipFile(package) as z:
        assert not found_in(b"".join(z.read(n) for n in z.namelist()))
    dossier = tmp_path / "d.pdf"
    cli("report", cid, "-o", dossier)
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(dossier).pages)
    assert not found_in(text.encode()) and "[erased]" in text
    assert not found_in(file_bytes(db)), found_in(file_bytes(db))
    # The other subject's case is untouched.
    assert "unrelated case, keep me" in cli("history", other, "--format", "table").stdout


def test_the_erasure_itself_is_recorded(cli, db, subject_case):
    cid, _ = subject_case
    cli("redact", EMAIL)
    events = cli.json("history", cid, "--json")["events"]
    assert events[-1]["kind"] == "redacted"
    note = next(e for e in events if e["kind"] == "note")
    assert note["data"]["summary"] == "[erased]" and note["hash"]
