"""Hostile values through real commands: numbers SQLite's JSON cannot hold, CSV that
would split or swallow rows, NUL bytes, formulas in the rejects file, dates of birth
in the future, terminal escape sequences, and the temporary files a kill leaves."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from casectl import fields
from casectl.services import importer

from conftest import casectl_bin, raw_connect

NON_FINITE = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def cases(db_path) -> int:
    conn = raw_connect(db_path)
    try:
        return conn.execute("SELECT count(*) FROM cases").fetchone()[0]
    finally:
        conn.close()


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("casectl: error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# --- 1. numbers SQLite's JSON functions cannot read: never stored ----------------------------


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize("option", ["--data", "--registry-data"])
def test_create_refuses_a_non_finite_number_and_where_keeps_working(cli, db, db_path, number, option):
    cli("create", "--workflow", "simple", "--ref", "OK-1", "--data", '{"amount": 5}')
    r = cli("create", "--workflow", "simple", option, f'{{"deep": {{"amount": [1, {number}]}}}}', expect=6)
    line = one_error_line(r.stderr)
    assert "deep.amount[1] is not a finite number" in line
    assert cases(db_path) == 1
    assert [c["ref"] for c in cli.json("list", "--where", "amount=5", "--json")] == ["OK-1"]


def test_import_rejects_rows_with_non_finite_numbers(cli, db, db_path, tmp_path):
    rows = [f'NF-{i},"{{""amount"": {n}}}",' for i, n in enumerate(NON_FINITE)]
    rows += [f"NC-{i},,{n}" for i, n in enumerate(NON_FINITE)]  # a "number" column of the mapping
    f = write(tmp_path / "nf.csv", "ref,data,total\n" + "\n".join(rows) + '\nOK-1,"{""amount"": 5}",7\n')
    mapping = write(tmp_path / "map.json", json.dumps({"columns": {"total": {"to": "total", "convert": "number"}}}))
    r = cli("import", f, "--workflow", "simple", "--map", mapping, expect=6)
    assert f"{len(rows)} invalid rows of {len(rows) + 1}; nothing was imported" in r.stderr
    assert "nf.csv:2: column data: amount is not a finite number" in r.stderr
    assert "nf.csv:7: column total: '1e400' is not a finite number" in r.stderr
    assert cases(db_path) == 0
    rejects = tmp_path / "rejects.csv"
    cli("import", f, "--workflow", "simple", "--map", mapping, "--skip-invalid", "--rejects", rejects)
    got = read_csv(rejects)
    assert [row[0] for row in got[1:]] == [row.split(",")[0] for row in rows]
    assert all("is not a finite number" in row[-1] for row in got[1:])
    assert cli.json("list", "--where", "amount=5", "--json")[0]["data"] == {"amount": 5, "total": 7}


def test_a_plain_cell_that_reads_nan_stays_text(cli, db, tmp_path):
    f = write(tmp_path / "t.csv", "ref,data.amount\nT-1,NaN\nT-2,1e400\n")
    cli("import", f, "--workflow", "simple")
    assert [c["data"]["amount"] for c in cli.json("list", "--where", "amount=NaN", "--json")] == ["NaN"]


def test_5000_digit_numbers_are_one_line_or_a_rejected_row(cli, db, db_path, tmp_path):
    digits = "9" * 5000
    r = cli("create", "--workflow", "simple", "--data", f'{{"n": {digits}}}', expect=6)
    assert "more than 4300 digits" in one_error_line(r.stderr)
    f = write(tmp_path / "big.csv", f'ref,data,n\nB-1,"{{""n"": {digits}}}",\nB-2,,{digits}\nB-3,,1\n')
    mapping = write(tmp_path / "map.json", json.dumps({"columns": {"n": {"to": "n", "convert": "int"}}}))
    rejects = tmp_path / "rejects.csv"
    r = cli("import", f, "--workflow", "simple", "--map", mapping, "--skip-invalid", "--rejects", rejects)
    assert "created 1" in r.stderr and "Traceback" not in r.stderr
    got = read_csv(rejects)
    assert [row[0] for row in got[1:]] == ["B-1", "B-2"]
    assert "column data: a number in it has more than 4300 digits" in got[1][-1]
    assert "column n: '9999" in got[2][-1] and "(5000 characters)' has more than 4300 digits" in got[2][-1]
    assert len(got[2][-1]) < 200  # the value is not quoted whole


# --- 2. a bare CR in a value is quoted, so it never splits a row ----------------------------


def test_a_bare_cr_is_quoted_in_export_and_in_listings(cli, db, tmp_path):
    name, note = "Ann\rBob", "one\rtwo"
    cli("create", "--workflow", "simple", "--ref", "CR-1", "--subject-name", name, "--data", json.dumps({"note": note}))
    cli("create", "--workflow", "simple", "--ref", "CR-2", "--subject-name", "Cy")
    out = tmp_path / "export.csv"
    cli("export", "-o", out)
    rows = read_csv(out)
    assert len(rows) == 3 and all(len(row) == len(rows[0]) for row in rows)
    by_ref = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert by_ref["CR-1"]["subject_name"] == name and json.loads(by_ref["CR-1"]["data"]) == {"note": note}
    # ...and it imports back as it was.
    fresh = {"CASECTL_DB": str(tmp_path / "fresh.db")}
    cli("init", env=fresh)
    cli("import", out, env=fresh)
    assert cli.json("show", "CR-1", "--json", env=fresh)["subject"]["name"] == name
    listed = list(csv.reader(io.StringIO(cli("list", "--format", "csv", "--fields", "ref,subject_name").stdout)))
    assert listed == [["ref", "subject_name"], ["CR-1", name], ["CR-2", "Cy"]]


def test_a_bare_cr_is_quoted_in_the_rejects_file(cli, db, tmp_path):
    f = write(tmp_path / "cr.csv", 'ref,subject_name,subject_email\nR-1,"Ann\rBob",nope\nR-2,Cy,cy@example.com\n')
    rejects = tmp_path / "rejects.csv"
    cli("import", f, "--workflow", "simple", "--skip-invalid", "--rejects", rejects)
    got = read_csv(rejects)
    assert len(got) == 2 and got[1][:3] == ["R-1", "Ann\rBob", "nope"]


# --- 3. and 4. a quote that never closes, a NUL byte: the file is refused, naming the line ------


@pytest.mark.parametrize(
    "body,line",
    [
        ('R-1,Ann\nR-2,"Bob\nR-3,Cy\nR-4,Di\n', 3),
        # The record begins on line 3; its second field, the one left open, on line 4.
        ('R-1,Ann\nR-2,"multi\nline","open\nR-3,Cy\n', 4),
        ('R-1,Ann\nR-2,"a ""quoted"" word\nR-3,Cy\n', 3),
    ],
)
def test_an_unbalanced_quote_is_refused_naming_its_line(cli, db, db_path, tmp_path, body, line):
    f = write(tmp_path / "q.csv", "ref,subject_name\n" + body)
    r = cli("import", f, "--workflow", "simple", expect=6)
    assert f"q.csv:{line}: a quoted field begins here and its closing quote never comes" in one_error_line(r.stderr)
    assert cases(db_path) == 0
    cli("import", f, "--workflow", "simple", "--skip-invalid", expect=6)  # not a row's fault: the file's
    assert cases(db_path) == 0


def test_text_after_a_closing_quote_is_refused(cli, db, db_path, tmp_path):
    f = write(tmp_path / "q.csv", 'ref,subject_name\nR-1,Ann\nR-2,"Bob"by\n')
    r = cli("import", f, "--workflow", "simple", expect=6)
    assert "q.csv:3: not readable as CSV (a quoted field goes on after its closing quote" in one_error_line(r.stderr)
    assert cases(db_path) == 0


@pytest.mark.parametrize("rows", [2000, 1], ids=["after-8KiB", "at-the-start"])
@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
def test_a_nul_byte_anywhere_is_refused_naming_its_line(cli, db, db_path, tmp_path, via_stdin, rows):
    head = "ref,subject_name\n" + "".join(f"N-{i},Person {i}\n" for i in range(rows))
    data = (head + "N-x,Nul\x00Name\n").encode()
    f = write(tmp_path / "nul.csv", data)
    if via_stdin:
        r = cli("import", "-", "--workflow", "simple", input=data, expect=6)
        label = "<stdin>"
    else:
        r = cli("import", f, "--workflow", "simple", expect=6)
        label = str(f)
    line = one_error_line(r.stderr)
    assert f"{label}:{rows + 2}: " in line and "NUL byte" in line
    assert cases(db_path) == 0


# --- 5. the rejects file is formula-escaped like an export --------------------------------


def test_rejects_are_formula_escaped_and_import_back_as_written(cli, db, tmp_path):
    values = ["=HYPERLINK(1)", "+SUM(A1)", "@SUM(1)", "-2+3", "\tTAB", "\rCR", "'=already escaped", "-5", "plain"]
    rows = [[f"F-{i}", v, "nope", v] for i, v in enumerate(values)]
    buf = io.StringIO()
    # "\r\n": csv quotes a CR only when it is part of the line terminator.
    csv.writer(buf, lineterminator="\r\n").writerows([["ref", "subject_name", "subject_email", "=memo"], *rows])
    f = write(tmp_path / "f.csv", buf.getvalue())
    rejects = tmp_path / "rejects.csv"
    cli("import", f, "--workflow", "simple", "--skip-invalid", "--rejects", rejects)
    got = read_csv(rejects)
    assert got[0] == ["ref", "subject_name", "subject_email", "'=memo", "error"]
    names = [row[1] for row in got[1:]]
    assert names == [
        "'=HYPERLINK(1)",
        "'+SUM(A1)",
        "'@SUM(1)",
        "'-2+3",
        "'\tTAB",
        "'\rCR",
        "'=already escaped",  # the file had escaped it: its value is '=already escaped, escaped once
        "-5",
        "plain",
    ]
    # Fixed (a real email, the error column dropped), the rejects import the values the file meant.
    fixed = [row[:2] + [f"f{i}@example.com"] + row[3:4] for i, row in enumerate(got[1:])]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([got[0][:4], *fixed])
    cli("import", write(tmp_path / "fixed.csv", buf.getvalue()), "--workflow", "simple")
    shown = {c["ref"]: c for c in cli.json("list", "--json")}
    expected = [v[1:] if v.startswith("'=") else v for v in values]
    assert [shown[f"F-{i}"]["subject_name"] for i in range(len(values))] == expected
    assert [shown[f"F-{i}"]["data"] for i in range(len(values))] == [{"=memo": v} for v in expected]


# --- 6. a date of birth in the future -------------------------------------------------------

NOW = {"CASECTL_NOW": "2026-06-01T12:00:00Z"}


def test_import_rejects_a_date_of_birth_in_the_future(cli, db, db_path, tmp_path):
    # At 12:00 UTC on 1 June, 2 June has begun in Kiribati (UTC+14); 3 June has begun nowhere.
    f = write(
        tmp_path / "dob.csv",
        "ref,subject_dob\nD-1,1990-01-01\nD-2,2026-06-01\nD-3,2026-06-02\nD-4,2026-06-03\nD-5,2999-01-01\n",
    )
    r = cli("import", f, "--workflow", "simple", env=NOW, expect=6)
    assert "dob.csv:5: column subject_dob: '2026-06-03' is in the future" in r.stderr
    assert "dob.csv:6: column subject_dob: '2999-01-01' is in the future" in r.stderr
    assert "2 invalid rows of 5" in r.stderr and cases(db_path) == 0
    rejects = tmp_path / "rejects.csv"
    cli("import", f, "--workflow", "simple", "--skip-invalid", "--rejects", rejects, env=NOW)
    assert [row[0] for row in read_csv(rejects)[1:]] == ["D-4", "D-5"]
    assert sorted(c["ref"] for c in cli.json("list", "--json")) == ["D-1", "D-2", "D-3"]


def test_create_refuses_a_date_of_birth_in_the_future(cli, db, db_path):
    r = cli("create", "--workflow", "simple", "--subject-dob", "2026-06-03", env=NOW, expect=None)
    assert r.exit_code == 6 and "'2026-06-03' is in the future" in one_error_line(r.stderr)
    assert cases(db_path) == 0


# --- 7. terminal escape sequences are shown escaped to people, kept exact in JSON and CSV -------

ESC_NAME = "Ann\x1b[2J\x1b]0;owned\x07\x9b31m\rX"
ESC_SHOWN = "Ann\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\rX"


@pytest.fixture
def hostile_case(cli, db):
    cid = cli("create", "--workflow", "simple", "--ref", "ESC-1", "--subject-name", ESC_NAME).stdout.strip()
    cli("note", cid, f"note {ESC_NAME}")
    cli("act", cid, "decline", "--reason", f"reason {ESC_NAME}")
    return cid


def no_controls(text: str) -> bool:
    return not any(c in text for c in "\x1b\x07\x9b\r")


def test_list_shows_controls_escaped_and_json_and_csv_keep_them(cli, hostile_case, monkeypatch):
    piped = cli("list").stdout
    assert ESC_SHOWN in piped and no_controls(piped)
    assert cli.json("list", "--json")[0]["subject_name"] == ESC_NAME
    ndjson = cli("list", "--format", "ndjson").stdout
    assert json.loads(ndjson)["subject_name"] == ESC_NAME and no_controls(ndjson)  # escaped the JSON way
    rows = list(csv.reader(io.StringIO(cli("list", "--format", "csv", "--fields", "subject_name").stdout)))
    assert rows == [["subject_name"], [ESC_NAME]]
    # The aligned table a terminal gets: whole (--wide), and cut to the terminal's width.
    monkeypatch.setattr("casectl.cli.output.is_tty", lambda stream=None: True)
    table = cli("list", "--wide").stdout
    assert ESC_SHOWN in table and no_controls(table)
    table = cli("list", env={"COLUMNS": "60"}).stdout
    assert ESC_SHOWN[:4] in table and no_controls(table)


def test_history_shows_controls_escaped(cli, hostile_case):
    text = cli("history", hostile_case).stdout
    assert f"reason {ESC_SHOWN}" in text and f"note {ESC_SHOWN}" in text and no_controls(text)
    events = cli.json("history", hostile_case, "--json")["events"]
    assert [e["reason"] for e in events if e["reason"]] == [f"reason {ESC_NAME}"]
    rows = list(csv.DictReader(io.StringIO(cli("history", hostile_case, "--format", "csv").stdout)))
    assert [r["reason"] for r in rows if r["reason"]] == [f"reason {ESC_NAME}"]


def test_show_escapes_notes_and_history(cli, hostile_case):
    text = cli("show", hostile_case).stdout
    assert f"note {ESC_SHOWN}" in text and f"reason {ESC_SHOWN}" in text
    doc = cli.json("show", hostile_case, "--json")
    assert doc["subject"]["name"] == ESC_NAME and doc["decision_reason"] == f"reason {ESC_NAME}"


def test_show_escapes_every_line(cli, hostile_case):
    assert no_controls(cli("show", hostile_case).stdout)


# --- 8. temporary files a kill leaves are removed by the next run --------------------------


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"casectl finished before {what}; make the input bigger"
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.01)


def test_a_killed_stdin_import_leaves_a_spool_the_next_run_removes(run, db, db_path, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [casectl_bin(), "import", "-", "--workflow", "simple"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"ref,subject_name\nK-1,Kim\n")
    proc.stdin.flush()
    _wait_for(lambda: any(tmp.iterdir()), proc, "a spool file")  # it waits for the rest of stdin
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    assert any(tmp.iterdir()), "the kill left no spool: nothing to test"
    r = run("import", "-", "--workflow", "simple", input="ref,subject_name\nK-2,Lee\n", env={"TMPDIR": str(tmp)})
    assert r.returncode == 0, r.stderr
    assert list(tmp.iterdir()) == []
    assert cases(db_path) == 1


def test_a_killed_import_leaves_rejects_files_the_next_run_removes(run, db, db_path, tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["ref", "subject_email"])
        w.writerows([f"BAD-{i:07d}", "nope"] for i in range(60_000))
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [casectl_bin(), "import", str(big), "--workflow", "simple", "--skip-invalid", "--rejects", str(out / "r.csv")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    # The command's staged rejects file and the importer's own, both under way.
    _wait_for(lambda: len(list(out.iterdir())) >= 2, proc, "the rejects' temporary files")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "r.csv").exists()
    small = write(tmp_path / "small.csv", "ref,subject_email\nBAD-1,nope\n")
    r = run("import", small, "--workflow", "simple", "--skip-invalid", "--rejects", out / "r2.csv")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["r2.csv"]
    assert cases(db_path) == 0


# --- 9. the importer's columns are casectl.fields' ----------------------------------------


def test_the_importer_reads_the_columns_casectl_fields_declares():
    assert set(importer.CASE_FIELDS) - set(importer.ROW_CHOICES) | {"data", "registry_data"} == set(fields.IMPORTABLE)
    assert set(importer.RESERVED) == set(fields.RESERVED)
    assert set(fields.EXPORT_COLUMNS) == set(fields.IMPORTABLE)


BAD_HOURS = [
    ({"start": "09:00", "end": "29:00"}, "business_hours.end"),
    ({"timezone": "Mars/Base"}, "business_hours.timezone"),
    ({"timezone": "../../etc/passwd"}, "business_hours.timezone"),
    ({"start": "17:00", "end": "09:00"}, "business_hours.end"),
    ({"days": [0, 8]}, "business_hours.days"),
]


def _workflow_with_hours(cli, tmp_path, hours) -> Path:
    doc = json.loads(cli("workflows", "show", "simple", "--json").stdout)
    doc = doc.get("workflow", doc)
    doc.update(name="hours", version=1, sla={"hours": 4, "business_hours": hours})
    path = tmp_path / "hours.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("hours,where", BAD_HOURS)
def test_bad_business_hours_are_refused_by_validate(cli, db, tmp_path, hours, where):
    path = _workflow_with_hours(cli, tmp_path, hours)
    r = cli("workflows", "validate", path, expect=6)
    assert where in r.stderr and "Traceback" not in r.stderr
    cli("workflows", "add", path, expect=6)


def test_bad_business_hours_stored_earlier_are_one_line_at_create(cli, db, tmp_path):
    path = _workflow_with_hours(cli, tmp_path, {"start": "09:00", "end": "17:00"})
    cli("workflows", "add", path)
    conn = raw_connect(db)
    conn.execute("UPDATE workflows SET definition = replace(definition, '\"17:00\"', '\"29:00\"') WHERE name = 'hours'")
    conn.commit()
    conn.close()
    r = cli("create", "--workflow", "hours", expect=6)
    assert "29:00" in r.stderr and "Traceback" not in r.stderr
