"""Personal data in outputs: --redact on export, report and digest; private notes stay private."""

from __future__ import annotations

import json
import zipfile

import pytest

SECRET_NAME, SECRET_EMAIL, SECRET_DOB = "Ingrid Bergström", "ingrid@example.com", "1975-03-04"


@pytest.fixture
def case(cli, db, tmp_path):
    cid = cli(
        "create",
        "--workflow",
        "simple",
        "--ref",
        "P-1",
        "--subject-name",
        SECRET_NAME,
        "--subject-email",
        SECRET_EMAIL,
        "--subject-dob",
        SECRET_DOB,
        "--data",
        json.dumps({"contact_email": SECRET_EMAIL, "amount": 120}),
    ).stdout.strip()
    cli("note", cid, "public remark")
    cli("note", cid, "the private suspicion", "--private")
    doc = tmp_path / "passport.txt"
    doc.write_text("passport scan")
    cli("block", cid, "add", "document", "passport")
    cli("attach", cid, "passport", str(doc))
    cli("approve", cid, "--reason", f"spoke to {SECRET_NAME}")
    return cid


def assert_no_personal_data(text: str) -> None:
    for secret in (SECRET_NAME, SECRET_EMAIL, SECRET_DOB):
        assert secret not in text, secret


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_export_redact(cli, case, fmt):
    plain = cli("export", "--format", fmt).stdout
    assert SECRET_NAME in plain and SECRET_EMAIL in plain
    redacted = cli("export", "--format", fmt, "--redact").stdout
    assert_no_personal_data(redacted)
    assert "I*** B***" in redacted and "P-1" in redacted  # still useful: initials, the ref


def test_package_leaves_private_notes_out_unless_asked(cli, case, tmp_path):
    path = tmp_path / "case.zip"
    cli("export", case, "--package", str(path))
    doc = json.loads(zipfile.ZipFile(path).read("case.json"))
    assert [n["text"] for n in doc["notes"]] == ["public remark"]
    assert "private suspicion" not in zipfile.ZipFile(path).read("history.json").decode()
    cli("export", case, "--package", str(path), "--include-private")
    doc = json.loads(zipfile.ZipFile(path).read("case.json"))
    assert [n["text"] for n in doc["notes"]] == ["public remark", "the private suspicion"]
    assert "--package" in cli("export", "--include-private", expect=2).stderr


def test_redacted_package_has_no_personal_data_and_no_documents(cli, case, tmp_path):
    path = tmp_path / "case.zip"
    cli("export", case, "--package", str(path), "--redact")
    z = zipfile.ZipFile(path)
    assert not [n for n in z.namelist() if n.startswith("documents/")]
    for name in z.namelist():
        assert_no_personal_data(z.read(name).decode())


def test_digest_redact(cli, case):
    text = cli("digest", "--dry-run", "--since", "2000-01-01").stdout
    assert SECRET_NAME in text
    redacted = cli("digest", "--dry-run", "--since", "2000-01-01", "--redact", "--format", "json").stdout
    assert_no_personal_data(redacted)
    assert "private suspicion" not in redacted and "I*** B***" in redacted


def test_report_redact(cli, case, tmp_path):
    from pypdf import PdfReader

    out = tmp_path / "r.pdf"
    cli("report", case, "-o", str(out), "--redact")
    text = "\n".join(p.extract_text() for p in PdfReader(out).pages)
    assert_no_personal_data(text)
    assert "private suspicion" not in text and "public remark" in text
