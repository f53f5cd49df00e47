"""`--redact` on every output: CSV, JSON and NDJSON export, the data package, the
overview and dossier PDFs, and the digest (printed and mailed).

The cases hold every kind of personal value the README promises to mask (the
subject's name, email and date of birth; phone, mobile and address.* in data,
block data and activity results; the same values quoted in a note, a contact
subject line and a decision reason) and things that must stay readable (block
names such as `ubo_mei`, kinds, statuses, workflows, ids, the ref, dates).
"""

from __future__ import annotations

import json
import re
import unicodedata
import zipfile
from io import BytesIO

import pytest
from pypdf import PdfReader

from outside_servers import parts

NOW = "2030-01-15T12:00:00Z"
NAME, EMAIL, DOB = "Mei Lin Chen", "mei.chen@example.org", "1988-07-21"
PHONE, MOBILE = "+44 20 7946 0958", 447700900123
LINE1, CITY, POSTCODE = "12 Elm Road", "Leeds", "LS1 4AB"
UBO_NAME, UBO_EMAIL, UBO_PHONE = "Tomasz Wójcik", "tomasz.w@example.net", "+48 22 555 0147"
DATA = {
    "phone": PHONE,
    "address": {"line1": LINE1, "city": CITY, "postcode": POSTCODE},
    "contact": {"mobile": MOBILE, "preferred": "phone"},
    "amount": 120,
    "segment": "retail",
}
QUOTED = f"{NAME} ({EMAIL}, {PHONE}) of {LINE1}, {CITY} {POSTCODE}"

# Found anywhere (case-insensitive, however the text is wrapped), they are a leak.
PHRASES = (NAME, EMAIL, "mei.chen", DOB, LINE1, "Elm Road", POSTCODE, UBO_NAME, UBO_EMAIL, "tomasz.w")
# Found as a word of their own: `ubo_mei` is a block name, not the subject's first name.
WORDS = ("Mei", "Lin", "Chen", CITY, "Elm", "Tomasz", "Wójcik")
DIGITS = ("442079460958", "79460958", str(MOBILE), "7700900123", "48225550147", "5550147")
# What must stay readable.
READABLE = ("ubo_mei", "user_data", "approved", "simple", "P-7")


def leaks(text: str) -> list[str]:
    """The personal values that appear in `text`."""
    text = unicodedata.normalize("NFKC", text)
    flat = " ".join(text.split()).casefold()
    found = [p for p in PHRASES if " ".join(p.split()).casefold() in flat]
    found += [w for w in WORDS if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text, re.I)]
    runs = {re.sub(r"\D", "", run) for run in re.findall(r"\+?\d[\d\s().-]*\d", text)}
    found += [d for d in DIGITS if any(d in run for run in runs)]
    return found


def assert_redacted(text: str, *readable: str) -> None:
    assert leaks(text) == [], leaks(text)
    for value in readable:
        assert value in text, value


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", NOW)


@pytest.fixture
def case(cli, db) -> str:
    """A decided case with every kind of personal value, and a block named after a person."""
    cid = cli(
        "create",
        "-w",
        "simple",
        "--ref",
        "P-7",
        "--subject-name",
        NAME,
        "--subject-email",
        EMAIL,
        "--subject-dob",
        DOB,
        "--data",
        json.dumps(DATA),
    ).stdout.strip()
    cli("block", cid, "add", "user_data", "ubo_mei", "--data", json.dumps({"name": NAME, "role": "director"}))
    cli("block", cid, "ubo_mei", "set", f"phone={PHONE}", f"address.postcode={POSTCODE}", f"address.city={CITY}")
    cli("activity", cid, "add", "right_to_work", "--label", "Right to work")
    cli("activity", cid, "right_to_work", "result", f"checked_with={NAME}", f"callback={PHONE}", "outcome=clear")
    cli("note", cid, f"Called Mei on {PHONE} about {LINE1}, {CITY}; wrote to {EMAIL}")
    cli("contact", cid, "--subject-line", f"For {NAME}, {POSTCODE}", "-m", "Please send your passport.")
    cli("approve", cid, "--reason", f"Verified {QUOTED}")
    return cid


@pytest.fixture
def kyb_case(cli, case) -> str:
    """A case whose KYC block (ubo_mei) names another person: only the block's data knows them."""
    cid = cli(
        "create", "-w", "kyb", "--subject-name", NAME, "--subject-email", EMAIL, "--data", json.dumps(DATA)
    ).stdout.strip()
    ubo = {"name": UBO_NAME, "email": UBO_EMAIL, "phone": UBO_PHONE}
    cli("block", cid, "add", "kyc", "ubo_mei", "--data", json.dumps(ubo))
    cli("note", cid, f"Tomasz said to call {UBO_PHONE}; Mei agreed")
    return cid


def pdf_text(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(BytesIO(data))
    return reader, "\n".join(p.extract_text() for p in reader.pages)


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_export(cli, case, fmt):
    # Without --redact the values are there, so the check below would see them.
    plain = set(leaks(cli("export", "--format", fmt).stdout))
    assert plain >= {NAME, EMAIL, DOB, LINE1, POSTCODE, CITY, "Mei", "442079460958", str(MOBILE)}
    out = cli("export", "--format", fmt, "--redact").stdout
    assert_redacted(out, "P-7", "simple", "approved", "M*** L*** C***", "retail")
    assert "***" in out and "120" in out  # the amount is not personal
    if fmt != "csv":
        [row] = json.loads(out) if fmt == "json" else [json.loads(line) for line in out.splitlines()]
        assert row["data"]["address"] == {"line1": "***", "city": "***", "postcode": "***"}
        assert row["data"]["contact"] == {"mobile": "***", "preferred": "phone"}
        assert row["decision_reason"].startswith("Verified M*** L*** C*** (m***@***, ***)")
    # Every column can be asked for; none brings a value back.
    assert_redacted(cli("export", "--format", fmt, "--redact", "--fields", "id,subject_name,subject_email").stdout)


def test_package(cli, case, kyb_case, tmp_path):
    for cid in (case, kyb_case):
        path = tmp_path / f"{cid}.zip"
        cli("export", cid, "--package", path, "--redact")
        z = zipfile.ZipFile(path)
        assert not [n for n in z.namelist() if n.startswith("documents/")]
        for name in z.namelist():
            assert_redacted(z.read(name).decode(), *(("ubo_mei",) if name != "manifest.json" else ()))
        doc = json.loads(z.read("case.json"))
        [block] = doc["blocks"]
        assert block["name"] == "ubo_mei" and block["kind"] in ("user_data", "kyc")
        assert block["data"]["name"] == "***" and block["data"]["phone"] == "***"
        assert doc["subject"]["name"] == "M*** L*** C***" and doc["subject"]["email"] == "m***@***"
        assert doc["data"]["address"] == {"line1": "***", "city": "***", "postcode": "***"}
        events = json.loads(z.read("history.json"))
        assert [e["id"] for e in events] == [e["id"] for e in cli.json("history", cid, "--json")["events"]]
        assert all(e["kind"] and e["at"].startswith("2030-01-15") for e in events)  # kinds and dates stay
    doc = json.loads(zipfile.ZipFile(tmp_path / f"{case}.zip").read("case.json"))
    assert doc["status"] == "approved" and doc["ref"] == "P-7" and doc["workflow"] == "simple"
    assert doc["notes"][0]["text"] == "Called M*** on *** about ***, ***; wrote to m***@***"
    assert [a["result"]["outcome"] for a in doc["activities"]] == ["clear"]
    assert doc["children"] == []
    kyb = json.loads(zipfile.ZipFile(tmp_path / f"{kyb_case}.zip").read("case.json"))
    assert kyb["children"][0]["block"] == "ubo_mei" and kyb["children"][0]["subject_name"] == "T*** W***"
    assert kyb["notes"][0]["text"] == "T*** said to call ***; M*** agreed"


def test_dossier(cli, case, kyb_case, tmp_path):
    cli("report", kyb_case, "-o", tmp_path / "plain.pdf")
    plain = set(leaks(pdf_text((tmp_path / "plain.pdf").read_bytes())[1]))
    assert plain >= {NAME, EMAIL, LINE1, POSTCODE, CITY, UBO_NAME, UBO_EMAIL, "Tomasz", "48225550147"}
    for cid in (case, kyb_case):
        out = tmp_path / f"{cid}.pdf"
        cli("report", cid, "-o", out, "--redact")
        reader, text = pdf_text(out.read_bytes())
        assert_redacted(text, "ubo_mei", "M*** L*** C***", f"Case dossier {cid}")
        assert_redacted(json.dumps(dict(reader.metadata), ensure_ascii=False))
    _, text = pdf_text((tmp_path / f"{case}.pdf").read_bytes())
    assert_redacted(text, *READABLE, "right_to_work", "outcome: clear", "address.postcode: ***", "2030-01-15")
    assert "Called M*** on ***" in text and "Verified M*** L*** C***" in text
    _, text = pdf_text((tmp_path / f"{kyb_case}.pdf").read_bytes())
    assert "kyc" in text and "T*** W***" in text  # the KYC child case's subject, masked


def test_overview(cli, case, kyb_case, tmp_path):
    runs = {
        "all": (),
        "where-address": ("--where", f"address.city={CITY}"),
        "where-email": ("--where", f"subject.email={EMAIL}", "--where", "segment=retail"),
    }
    summaries = {}
    for label, filters in runs.items():
        out = tmp_path / f"{label}.pdf"
        summaries[label] = r = cli("report", *filters, "-o", out, "--redact", "--json").stdout
        reader, text = pdf_text(out.read_bytes())
        assert_redacted(text, "M*** L***", "simple", "approved", "C-1")
        assert_redacted(json.dumps(dict(reader.metadata), ensure_ascii=False))  # the filters are in it too
        assert_redacted(r)
    _, text = pdf_text((tmp_path / "where-email.pdf").read_bytes())
    assert "where subject.email=***" in text and "where segment=retail" in text
    assert json.loads(summaries["where-address"])["cases"] == 2  # the filter still selects by the real value


def test_digest_printed(cli, case, kyb_case):
    plain = cli("digest", "--dry-run", "--since", "2000-01-01").stdout
    assert set(leaks(plain)) >= {NAME, EMAIL, LINE1, POSTCODE, "442079460958"}
    for fmt in ("text", "html", "json"):
        out = cli("digest", "--dry-run", "--since", "2000-01-01", "--redact", "--format", fmt).stdout
        assert_redacted(out, "C-1", "approved", "M*** L*** C***")
        assert "Verified M*** L*** C***" in out


def test_digest_mailed(cli, case, kyb_case, smtp):
    cli("digest", "--to", "boss@example.com", "--since", "2000-01-01", "--redact")
    [(_, msg)] = smtp.messages
    body = parts(msg)
    assert set(body) == {"text/plain", "text/html"}
    for part in body.values():
        assert_redacted(part, "C-1", "approved", "M*** L*** C***")
    assert_redacted(str(msg["Subject"]))


def test_free_text_keeps_what_is_not_personal():
    from casectl.redaction import Redactor, personal_key

    r = Redactor.for_case({"subject_name": NAME, "subject_email": EMAIL, "data": DATA}, blocks=[{"name": "chen"}])
    assert r.text(f"Mei rang from {PHONE} on 2030-01-15 10:00 about invoice 1234567 (company 09876543)") == (
        "M*** rang from *** on 2030-01-15 10:00 about invoice 1234567 (company 09876543)"
    )
    assert r.text("call 020 7946 0958 or +1 555 0100 100; block chen, ubo_mei") == (
        "call *** or ***; block chen, ubo_mei"  # a block's own name stays, even a person-like one
    )
    assert r.text("wrote to mei.chen@exa...") == "wrote to m***@***..."  # a summary cut short
    assert r.text("Verified Mei Lin Ch...") == "Verified M*** L*** ***..."
    assert r.data({"block": "ubo_mei", "home": {"street": "Elm", "floor": 2}, "n": MOBILE, "ok": True}) == {
        "block": "ubo_mei",
        "home": {"street": "***", "floor": 2},
        "n": "***",
        "ok": True,
    }
    assert [k for k in ("phone", "homeAddress", "dob", "tel_no", "city", "amount", "status") if personal_key(k)] == [
        "phone",
        "homeAddress",
        "dob",
        "tel_no",
    ]
