"""`casectl report`: the PDFs are read back with pypdf and checked against `list`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from io import BytesIO

import pytest
from casectl.store import cases as case_store
from casectl.store import connect, write
from casectl.store import events as event_store
from pypdf import PdfReader

from conftest import raw_connect

NOW = "2030-01-15T12:00:00Z"
NAMES = {"zh": "王小明", "ar": "محمد عبد الله", "ru": "Дмитрий Иванов", "fr": "Zoë Ærøskøbing-Lefèvre"}


def pdf_text(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(BytesIO(data))
    # Arabic comes back as presentation forms (the shaped glyphs); NFKC maps them to the letters.
    text = unicodedata.normalize("NFKC", "\n".join(p.extract_text() for p in reader.pages))
    return reader, text


def read_pdf(path) -> tuple[PdfReader, str]:
    return pdf_text(path.read_bytes())


def section(text: str, start: str, end: str | None) -> str:
    i = text.index(start)
    j = text.index(end, i) if end else len(text)
    return text[i:j]


def totals(text: str, title: str, nxt: str) -> dict[str, int]:
    """The 'Cases by ...' table: label, count, share, one cell per line, until 'total'."""
    lines = [x.strip() for x in section(text, f"Cases by {title}", nxt).splitlines() if x.strip()]
    i = lines.index("Share") + 1
    out = {}
    while lines[i] != "total":
        out[lines[i]] = int(lines[i + 1].replace(",", ""))
        i += 3
    out["total"] = int(lines[i + 1].replace(",", ""))
    return out


@pytest.fixture
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", NOW)


@pytest.fixture
def cases(cli, db, pinned):
    """A mix of workflows, statuses and scripts; enough cases for several pages."""
    plan = [
        ("kyb", "manual_review"),
        ("kyb", "pending_process"),
        ("simple", "open"),
        ("simple", "approved"),
        ("screening", "in_progress"),
        ("kyb", "rejected"),
    ]
    specials = list(NAMES.values())
    for i in range(130):
        wf, status = plan[i % len(plan)]
        name = specials[i] if i < len(specials) else f"Person {i:03d}"
        args = ["create", "-w", wf, "--subject-name", name, "--subject-email", f"p{i}@example.com"]
        if i % 3 == 0:
            args += ["--assignee", "alice"]
        reach(cli, cli(*args).stdout.strip(), status)
    return 130


# How a new case gets to a status, the way the rules allow (a case is born in its initial status).
ROUTES = {
    "manual_review": [("event", "collection_completed")],
    "pending_process": [("activity", "add", "registry_check"), ("event", "collection_completed")],
    "approved": [("approve",)],
    "in_progress": [("event", "initiated"), ("event", "subject_submitted")],
    "rejected": [("event", "collection_completed"), ("reject", "--reason", "dissolved")],
}


def reach(cli, case: str, status: str) -> None:
    for step in ROUTES.get(status, []):
        cli(step[0], case, *step[1:])
    assert cli.json("show", case, "--json")["status"] == status


def list_ids(cli, *filters) -> list[str]:
    return [r["id"] for r in cli.json("list", *filters, "--format", "json")]


def test_overview_counts_agree_with_list(cli, cases, tmp_path):
    out = tmp_path / "overview.pdf"
    result = cli("report", "-o", out)
    assert "130 cases" in result.stderr
    reader, text = read_pdf(out)
    by_status = totals(text, "status", "Cases by workflow")
    assert by_status["total"] == 130
    for status, n in by_status.items():
        if status != "total":
            assert n == len(list_ids(cli, "--status", status)), status
    by_workflow = totals(text, "workflow", "SLA breaches")
    for wf in ("kyb", "simple", "screening"):
        assert by_workflow[wf] == len(list_ids(cli, "--workflow", wf))
    # Every case is in the table, once, in id order.
    table = section(text, "All cases (130)", "End of report.")
    shown = re.findall(r"^(C-\d+)$", table, re.M)
    assert shown == list_ids(cli)
    # A sample row: id, subject, workflow, status, assignee, created date, in that order.
    assert re.search(r"^C-7\nPerson 006\nkyb\nmanual_review\nalice\n2030-01-15\n0m$", table, re.M)


def test_overview_pages_are_numbered_and_header_repeats(cli, cases, tmp_path):
    out = tmp_path / "o.pdf"
    cli("report", "-o", out)
    reader = PdfReader(out)
    n = len(reader.pages)
    assert n >= 3
    for i, page in enumerate(reader.pages, 1):
        text = page.extract_text()
        assert re.search(rf"page {i} of\s*{n}\b", text), text[-200:]
        if i > 1:  # the case table pages start with the header row
            assert "Case\nSubject\nWorkflow\nStatus\nAssignee\nCreated\nAge" in text


def test_names_in_every_script_come_back_as_text(cli, cases, tmp_path):
    out = tmp_path / "o.pdf"
    cli("report", "-o", out)
    _, text = read_pdf(out)
    for name in NAMES.values():
        assert name in text, name
    fonts = set()
    for page in PdfReader(out).pages:
        for f in page["/Resources"]["/Font"].values():
            fonts.add(str(f.get_object()["/BaseFont"]))
    # Embedded (subset) TrueType faces, not a viewer's substitute.
    assert {"NotoSans-Regular", "NotoSansArabic-Regular"} <= {f.split("+")[-1] for f in fonts}
    assert any(f.split("+")[-1].startswith("NotoSansSC") for f in fonts)


def test_filters_select_the_same_cases_as_list(cli, cases, tmp_path):
    out = tmp_path / "kyb.pdf"
    doc = cli.json("report", "--workflow", "kyb", "--status", "manual_review", "-o", out, "--json")
    expected = list_ids(cli, "--workflow", "kyb", "--status", "manual_review")
    assert doc["cases"] == len(expected) and doc["report"] == "overview"
    reader, text = read_pdf(out)
    assert re.findall(r"^(C-\d+)$", section(text, "All cases", "End of report."), re.M) == expected
    assert "statuses: manual_review; workflow: kyb" in text
    meta = reader.metadata
    kw = json.loads(meta["/Keywords"])
    assert kw["filters"] == {"workflow": "kyb", "statuses": ["manual_review"]} and kw["casectl"] == "0.1.0"
    assert meta["/Creator"] == "casectl 0.1.0"


def test_sla_breaches_and_waiting_longest(cli, db, pinned, tmp_path):
    for i in range(3):
        cli("create", "-w", "simple", "--subject-name", f"S{i}", "--subject-email", f"s{i}@example.com")
    conn = connect(db)
    with write(conn):
        for cid, due in ((1, "2030-01-10T00:00:00Z"), (2, "2030-02-01T00:00:00Z")):
            case = case_store.get(conn, cid)
            case_store.update(conn, cid, case["version"], {"due_at": due}, at=NOW)
    overdue = list_ids(cli, "--overdue")
    assert overdue == ["C-1"]
    out = tmp_path / "o.pdf"
    cli("report", "-o", out)
    _, text = read_pdf(out)
    part = section(text, "SLA breaches", "Waiting longest")
    assert "SLA breaches: 1 open case past due" in part
    assert re.findall(r"^(C-\d+)$", part, re.M) == ["C-1"] and "5d" in part
    assert "Waiting longest: 3 of 3 open cases" in text


def test_overview_is_reproducible(cli, cases, tmp_path):
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    cli("report", "--status", "open", "-o", a)
    cli("report", "--status", "open", "-o", b)
    assert pdf_text(a.read_bytes())[1] == pdf_text(b.read_bytes())[1]
    assert a.read_bytes() == b.read_bytes()  # reportlab's invariant mode: the same bytes
    assert PdfReader(a).metadata["/CreationDate"].startswith("D:20300115120000")


def test_dossier(cli, db, pinned, tmp_path):
    first = cli(
        "create",
        "-w",
        "kyb",
        "--subject-name",
        NAMES["ar"],
        "--subject-email",
        "m@example.ae",
        "--subject-dob",
        "1980-04-02",
        "--assignee",
        "alice",
    ).stdout.strip()
    reach(cli, first, "manual_review")
    cli("create", "-w", "kyb", "--subject-name", NAMES["zh"], "--subject-email", "w@example.cn")
    conn = connect(db)
    at = NOW
    # Blocks, notes, activities and attachments are written by other commands; put rows in as they would.
    with write(conn):
        conn.execute(
            "INSERT INTO blocks (case_id, name, kind, status, data, created_at, updated_at) VALUES "
            "(1, 'passport', 'document', 'reupload_needed', '{\"number\": \"X123\"}', ?, ?)",
            (at, at),
        )
        conn.execute(
            "INSERT INTO documents (sha256, size, media_type, content, created_at) VALUES (?, 5, "
            "'application/pdf', ?, ?)",
            ("ab" * 32, b"hello", at),
        )
        conn.execute(
            "INSERT INTO attachments (case_id, block_id, sha256, filename, media_type, size, created_at, "
            "created_by) VALUES (1, 1, ?, 'passport.pdf', 'application/pdf', 5, ?, 'alice')",
            ("ab" * 32, at),
        )
        conn.execute(
            "INSERT INTO activities (case_id, type, label, state, result, decision, decided_by, decided_at, "
            "created_at, updated_at) VALUES (1, 'dbs_check', 'DBS check', 'complete', '{\"outcome\": "
            "\"clear\"}', 'reviewed', 'bob', ?, ?, ?)",
            (at, at, at),
        )
        conn.execute(
            "INSERT INTO notes (case_id, at, actor, text, private) VALUES (1, ?, 'alice', 'Called the customer.', 0)",
            (at,),
        )
        conn.execute(
            "INSERT INTO notes (case_id, at, actor, text, private) VALUES (1, ?, 'alice', "
            "'Suspect a forged passport.', 1)",
            (at,),
        )
        conn.execute("UPDATE cases SET parent_id = 1 WHERE id = 2")
        event_store.append(conn, 1, at=at, actor="alice", kind="note", data={"summary": "note added"})
    cli("act", "C-1", "request_reuploads", "--reason", "photo unreadable")

    out = tmp_path / "case.pdf"
    cli("report", "C-1", "-o", out)
    reader, text = read_pdf(out)
    assert "Case dossier C-1" in text and NAMES["ar"] in text and NAMES["zh"] in text  # child case
    assert "revisions" in text and "reject" in text  # status and the action allowed now
    assert "passport" in text and "pending_reupload" in text and "number: X123" in text
    assert "DBS check" in text and "outcome: clear" in text and "reviewed by bob" in text
    assert "ab" * 32 in text.replace("\n", "")
    assert "Called the customer." in text
    assert "Suspect a forged passport." not in text and "1 private note left out" in text
    history = [e["id"] for e in cli.json("history", "C-1", "--format", "json")]
    shown = re.findall(r"^(E-\d+)$", section(text, "History (", "End of dossier"), re.M)
    assert shown == history and len(history) >= 3
    assert re.search(r"page 1 of\s*\d", text)

    private = tmp_path / "private.pdf"
    cli("report", "C-1", "-o", private, "--include-private")
    _, text = read_pdf(private)
    assert "Suspect a forged passport." in text and "left out" not in text
    assert json.loads(PdfReader(private).metadata["/Keywords"])["include_private"] is True


def test_redact_masks_names_emails_and_birth_dates(cli, db, pinned, tmp_path):
    cli(
        "create",
        "-w",
        "kyb",
        "--subject-name",
        "Ada Lovelace",
        "--subject-email",
        "ada@example.com",
        "--subject-dob",
        "1815-12-10",
        "--data",
        '{"director_name": "Charles Babbage", "city": "London"}',
    )
    texts = {}
    for args in (("C-1",), ()):
        out = tmp_path / "r.pdf"
        cli("report", *args, "-o", out, "--redact")
        texts[args] = text = read_pdf(out)[1]
        for secret in ("Lovelace", "ada@example.com", "1815", "Babbage"):
            assert secret not in text, (args, secret)
        assert "A*** L***" in text
    assert "city: London" in texts[("C-1",)]  # what is not personal stays readable


def test_output_to_stdout(run, db, pinned):
    cli_run = run("create", "-w", "simple", "--subject-name", NAMES["zh"])
    assert cli_run.returncode == 0
    res = subprocess.run(
        [sys.executable, "-m", "casectl", "report", "-o", "-"], capture_output=True, env={**__import__("os").environ}
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(b"%PDF-") and res.stdout.rstrip().endswith(b"%%EOF")
    _, text = pdf_text(res.stdout)
    assert NAMES["zh"] in text


def test_existing_file_is_replaced_and_kept_on_failure(cli, db, pinned, tmp_path):
    cli("create", "-w", "simple", "--subject-name", "One")
    out = tmp_path / "o.pdf"
    out.write_bytes(b"old report")
    cli("report", "-o", out)
    assert out.read_bytes().startswith(b"%PDF-")
    before = out.read_bytes()
    res = cli("report", "C-99", "-o", out, expect=3)
    assert "C-99" in res.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".o.pdf")) == []


def event_count(db) -> int:
    conn = raw_connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["report"], 2, "--output"),
        (["report", "C-1", "--status", "open", "-o", "x.pdf"], 2, "drop the filters (--status)"),
        (["report", "--include-private", "-o", "x.pdf"], 2, "give a case id"),
        (["report", "--sort", "colour", "-o", "x.pdf"], 2, "unknown sort field 'colour'"),
        (["report", "--created-since", "yesterday-ish", "-o", "x.pdf"], 2, "--created-since"),
        (["report", "C-42", "-o", "x.pdf"], 3, "C-42"),
        (["report", "--view", "nope", "-o", "x.pdf"], 3, "no view 'nope'"),
        (["report", "-o", "no/such/dir/x.pdf"], 6, "no directory"),
    ],
)
def test_bad_input(cli, db, tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    cli("create", "-w", "simple", "--subject-name", "One")
    events = event_count(db)
    res = cli(*args, expect=code)
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.pdf").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".pdf", ".tmp")) == []
    assert event_count(db) == events


def test_report_module_loads_no_reportlab_until_it_runs():
    code = (
        "import sys, casectl.cli.app, casectl.cli.report, casectl.services.reports; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('reportlab', 'pypdf', 'bidi')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
