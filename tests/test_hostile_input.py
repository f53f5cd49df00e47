"""Hostile values through real commands: numbers SQLite's JSON cannot hold, CSV that
would split or swallow rows, NUL bytes, formulas in the rejects file, dates of birth
in the future, terminal escape sequences, and the temporary files a kill leaves."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

from casectl import fields
from casectl.services import importer


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def cases(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
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


# --- 9. the importer's columns are casectl.fields' ----------------------------------------


def test_the_importer_reads_the_columns_casectl_fields_declares():
    assert set(importer.CASE_FIELDS) | {"data", "registry_data"} == set(fields.IMPORTABLE)
    assert set(importer.RESERVED) == set(fields.RESERVED)
    assert set(fields.EXPORT_COLUMNS) == set(fields.IMPORTABLE)
