"""Fuzzing the CSV import and the id lists read from stdin: random bytes and hostile CSV text
(quotes, CR, LF, NUL, BOMs, invalid UTF-8, long fields, many or duplicate columns, empty files,
formula-like cells). Never a traceback, only a documented exit code; a refused import or bulk
change leaves the database row for row as it was; one that succeeds leaves `db check` passing
and created exactly the cases it says it created."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from contextlib import closing

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from conftest import casectl_bin, raw_connect
from test_hostile import DOCUMENTED, fingerprint

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible, not luck
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

COLUMNS = [
    "ref",
    "workflow",
    "status",
    "subject_ref",
    "subject_name",
    "subject_email",
    "subject_dob",
    "country",
    "entity_type",
    "assignee",
    "team",
    "priority",
    "tags",
    "data",
    "registry_data",
    "company.reg_no",
    "data.amount",
    "unknown",
    "",
    " ref ",
    "REF",
    "\ufeffref",
    "ref\x00",
    "=ref",
]
CELLS = [
    "",
    " ",
    '"',
    '""',
    'a"b',
    '"quoted"',
    "\r",
    "\n",
    "\r\n",
    "a\rb",
    "a\nb",
    "\x00",
    "a\x00b",
    "\ufeff",
    "\ufeffR1",
    "=cmd|' /C calc'!A0",
    "'=1+1",
    "+SUM(A1)",
    "-2+3",
    "@SUM(1)",
    "\t=1",
    "1e400",
    "NaN",
    "-Infinity",
    "9" * 5000,
    "x" * 70_000,
    "{}",
    '{"a": 1}',
    '{"a": 1e400}',
    "[1, 2]",
    "C-1",
    "c1",
    "1",
    "C-\u0661",
    "simple",
    "kyb",
    "open",
    "approved",
    "urgent",
    "GB",
    "gb",
    "ZZ",
    "person",
    "company",
    "ada@example.com",
    "not an email",
    "1815-12-10",
    "9999-12-31",
    "2026-02-30",
    "vip,batch",
    "\u202e\u0644\u0627",
    "\x1b[31mred\x1b[0m",
    "\udcff",
    "李小龍",
    "Zoë",
]


def cells() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(CELLS), st.text(max_size=20), st.text(alphabet='",\r\n\x00 ab', max_size=12))


@st.composite
def csv_documents(draw) -> bytes:
    """A CSV file as bytes: a header of known, unknown, blank or duplicate columns; rows written
    properly quoted or joined raw (so quotes and line breaks land anywhere); an encoding, a BOM,
    stray invalid bytes."""
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=8))
    if draw(st.integers(0, 9)) == 0:
        header += [f"c{i}" for i in range(draw(st.integers(50, 400)))]  # many columns
    rows = draw(
        st.lists(st.lists(cells(), min_size=0, max_size=len(header) + 2), max_size=6)
        if draw(st.booleans())
        else st.lists(st.lists(cells(), min_size=len(header), max_size=len(header)), max_size=6)
    )
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):
        out = io.StringIO()
        w = csv.writer(out, lineterminator=eol, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
        for row in [header, *rows] if header or draw(st.booleans()) else rows:
            w.writerow(row)
        text = out.getvalue()
    else:
        text = "".join(",".join(row) + eol for row in [header, *rows])
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no line break at the end
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="surrogateescape" if encoding.startswith("utf-8") else "replace")
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"])) + data[at:]
        )
    return data


FREE_TEXT = ["subject_name", "data.note", "company.name", "team", "assignee"]
VALUED = {
    "country": ["GB", "fr", "", "ZZ"],
    "priority": ["low", "normal", "high", "urgent", "", "p9"],
    "subject_dob": ["1815-12-10", "", "2026-02-30", "9999-12-31"],
    "subject_email": ["ada@example.com", "", "not an email", "ADA@EXAMPLE.COM"],
    "tags": ["vip", "vip,batch", "", "a b"],
    "data.amount": ["12", "-3.5", "1e400", "NaN", "9" * 400],
}


@st.composite
def mostly_valid_csv(draw) -> bytes:
    """A well-formed CSV that mostly imports: unique refs, known columns; the free-text columns get
    any text at all (control characters, quotes, CR, LF, formulas, long runs), the others a
    sometimes-wrong value."""
    free = draw(st.lists(st.sampled_from(FREE_TEXT), unique=True, max_size=3))
    valued = draw(st.lists(st.sampled_from(sorted(VALUED)), unique=True, max_size=3))
    header = ["ref", *free, *valued]
    base = draw(st.integers(0, 10**9))
    rows = []
    for i in range(draw(st.integers(1, 5))):
        row = [f"F{base}-{i}"]
        row += [draw(st.one_of(st.text(max_size=40), st.sampled_from(CELLS))) for _ in free]
        row += [draw(st.sampled_from(VALUED[c])) for c in valued]
        rows.append(row)
    out = io.StringIO()
    w = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    w.writerows([header, *rows])
    return out.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])), errors="surrogateescape")


# A control character that reaches a terminal raw can clear it, retitle it or hide a line.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def count(db_path, sql: str) -> int:
    with closing(raw_connect(db_path)) as conn:
        return conn.execute(sql).fetchone()[0]


def check_import(cli, db_path, data: bytes, path, *extra: str):
    """Import `data` from `path`; judge the outcome; returns the exit code."""
    path.write_bytes(data)
    before = fingerprint(db_path)
    cases = count(db_path, "SELECT count(*) FROM cases")
    r = cli("import", str(path), "--workflow", "simple", "--json", *extra, expect=None)
    assert r.exit_code in DOCUMENTED, (data[:300], r.exit_code, r.output[-2000:])
    assert "Traceback" not in r.output
    event(f"exit {r.exit_code}")  # --hypothesis-show-statistics shows how the examples went
    if r.exit_code != 0:
        assert fingerprint(db_path) == before, (data[:300], r.stderr)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines and lines[0].startswith("casectl: error: "), r.stderr
        assert not RAW_CONTROL.search(r.stderr), f"raw control characters in the error: {r.stderr[:500]!r}"
        return r.exit_code, None
    result = json.loads(r.stdout)
    assert count(db_path, "SELECT count(*) FROM cases") - cases == result["created"], result
    check = cli.json("db", "check", "--json", expect=None)
    assert check["ok"], (data[:300], check)
    return 0, result


@FUZZ
@given(data=st.binary(max_size=3000))
@example(data=b"")
@example(data=b"\xef\xbb\xbf")
@example(data=b"\xff\xfe")
@example(data=b"ref\n\x00")
@example(data=b"ref\nR1\xff\n")
@example(data=b"ref\r\nR1\rR2\n")
def test_random_bytes_as_a_csv(cli, db, db_path, tmp_path, data):
    check_import(cli, db_path, data, tmp_path / "random.csv")


@FUZZ
@given(data=csv_documents())
@example(data=b'ref,subject_name\nR1,"unbalanced\nR2,b\n')
@example(data=b"ref,ref\nR1,R2\n")
@example(data=b'ref,subject_name\nR1,=HYPERLINK("http://x")\n')
@example(data=b"ref,data.amount\nR1,1e400\n")
@example(data=b"ref,subject_name\nR1," + b"y" * 200_000 + b"\n")
def test_hostile_csv_text(cli, db, db_path, tmp_path, data):
    check_import(cli, db_path, data, tmp_path / "hostile.csv")


@FUZZ
@given(data=mostly_valid_csv())
def test_well_formed_csv_with_hostile_free_text(cli, db, db_path, tmp_path, data):
    code, _ = check_import(cli, db_path, data, tmp_path / "mostly.csv")
    if code == 0:  # whatever the text held, the CSV export has one row per case (a bare CR split them)
        rows = list(csv.DictReader(io.StringIO(cli("export", "-f", "csv").stdout, newline="")))
        with closing(raw_connect(db_path)) as conn:
            refs = {r[0] for r in conn.execute("SELECT ref FROM cases")}
        assert sorted(r["ref"] for r in rows) == sorted(refs)


@FUZZ
@given(data=st.one_of(csv_documents(), mostly_valid_csv()))
def test_hostile_csv_with_skip_invalid_and_rejects(cli, db, db_path, tmp_path, data):
    rejects = tmp_path / "rejects.csv"
    rejects.unlink(missing_ok=True)
    code, result = check_import(
        cli, db_path, data, tmp_path / "hostile.csv", "--skip-invalid", "--rejects", str(rejects)
    )
    if code != 0:
        assert not rejects.exists(), "a refused import wrote its rejects file"
        return
    assert result["invalid"] == 0 or rejects.exists(), result
    if rejects.exists():
        assert oct(rejects.stat().st_mode & 0o777) == "0o600"  # rejects hold personal data
        rows = list(csv.reader(io.StringIO(rejects.read_text(encoding="utf-8"), newline="")))
        assert rows and rows[0][-1] == "error" and len(rows) - 1 == result["invalid"], (rows[:3], result)
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(("=", "+", "@")), f"a rejects cell is not formula-escaped: {cell!r}"


# --- ids from stdin -------------------------------------------------------------


@pytest.fixture
def three(cli, db):
    for ref in ("R1", "R2", "2"):
        cli("create", "--workflow", "simple", "--ref", ref, "--subject-email", f"{ref}@example.com")
    return db


ID_LINES = [b"C-1", b"c1", b"1", b"C-2", b"R1", b"ref:2", b"C-99", b"", b"# comment", b"C-1 open simple", b"C-\xd9\xa1"]
stdin_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.one_of(st.sampled_from(ID_LINES), st.binary(max_size=12)),
        max_size=8,
    ).map(lambda lines: b"\n".join(lines)),
    st.lists(st.sampled_from(ID_LINES + [b"\xff", b"\x00", b"\r", b"\xed\xa0\x80"]), max_size=8).map(b"\r\n".join),
)
BULK = [
    ["tag", "-", "+fuzz"],
    ["tag", "-", "-fuzz", "+other"],
    ["act", "-", "approve"],
    ["act", "-", "decline", "--reason", "fuzz"],
    ["act", "-", "approve", "--dry-run"],
    ["assign", "-", "ann"],
]


def judge_bulk(r, db_path, before, args, data):
    assert r.exit_code in DOCUMENTED, (args, data, r.exit_code, r.output[-2000:])
    assert "Traceback" not in r.output
    if r.exit_code != 0 or "--dry-run" in args:
        assert fingerprint(db_path) == before, (args, data, r.output)
    if r.exit_code != 0:
        # A batch names each refused id on its own line, then says what happened to the batch.
        assert any(line.startswith("casectl: ") for line in r.stderr.splitlines()), (args, data, r.stderr)
        if "--dry-run" not in args:  # a dry run's own refusal lines (cli/queue.py) still print raw
            assert not RAW_CONTROL.search(r.stderr), f"raw control characters in the error: {r.stderr[:500]!r}"


@FUZZ
@given(args=st.sampled_from(BULK), data=stdin_bytes)
def test_random_bytes_as_ids_on_stdin(cli, three, db_path, args, data):
    before = fingerprint(db_path)
    r = cli(*args, input=data, expect=None)
    event(f"{args[0]}: exit {r.exit_code}")
    judge_bulk(r, db_path, before, args, data)


@pytest.mark.parametrize(
    "line,shown",
    [
        (b"\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # retitles the terminal
        (b"\x1b[2J", "\\x1b[2J"),  # clears it
        (b"C-9\x08\x08\x08C-1", "C-9\\x08\\x08\\x08C-1"),  # backspaces would print C-1 over C-9
        ("\u009b2J".encode(), "\\x9b2J"),  # the one-character CSI (C1)
        (b"\x00", "\\x00"),
    ],
)
def test_error_lines_show_the_control_characters_of_what_was_read_escaped(cli, three, db_path, line, shown):
    before = fingerprint(db_path)
    r = cli("tag", "-", "+x", input=b"C-1\n" + line + b"\n", expect=3)
    assert shown in r.stderr and not RAW_CONTROL.search(r.stderr), repr(r.stderr)
    assert fingerprint(db_path) == before


STDIN_CASES = [
    b"C-1\n\xff\n",
    b"\xff\xfe\x00C\x00-\x001\x00",  # UTF-16
    b"\xef\xbb\xbfC-1\n",
    b"C-1\x00\n",
    b"C-1\rC-2\r",
    b"\xed\xa0\x80\n",
    b"C-1\n" * 2000 + b"\xc3",
    b"",
]


@pytest.mark.parametrize("data", STDIN_CASES, ids=lambda d: repr(d[:20]))
@pytest.mark.parametrize("args", [["tag", "-", "+fuzz"], ["act", "-", "approve"]], ids=" ".join)
def test_hostile_stdin_in_a_real_process(run, db_path, args, data):
    """The same through a real process: stdin is the process's own, not the test runner's."""
    assert run("init").returncode == 0
    for ref in ("R1", "R2"):
        assert run("create", "--workflow", "simple", "--ref", ref).returncode == 0
    before = fingerprint(db_path)
    r = subprocess.run([casectl_bin(), *args], input=data, capture_output=True, env=os.environ, timeout=60)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode in DOCUMENTED and "Traceback" not in err, (r.returncode, err[-2000:])
    if r.returncode != 0:
        assert fingerprint(db_path) == before
        assert any(line.startswith("casectl: ") for line in err.splitlines()), err


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"ref,subject_name\nR1,Ann\n", id="plain"),
        pytest.param(b"\xef\xbb\xbfref\r\nR1\r\n", id="bom-crlf"),
        pytest.param(b"ref\nR1\xff\n", id="invalid-utf8"),
        pytest.param(b"ref\nR1\x00\n", id="nul"),
        pytest.param(b'ref\n"R1\n', id="unbalanced-quote"),
        pytest.param(b"", id="empty"),
    ],
)
def test_hostile_csv_on_stdin_in_a_real_process(run, db_path, data):
    assert run("init").returncode == 0
    before = fingerprint(db_path)
    r = subprocess.run(
        [casectl_bin(), "import", "-", "--workflow", "simple"], input=data, capture_output=True, env=os.environ
    )
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode in DOCUMENTED and "Traceback" not in err, (r.returncode, err[-2000:])
    if r.returncode != 0:
        assert fingerprint(db_path) == before
    else:
        assert run("db", "check").returncode == 0


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(
            "database",
            marks=pytest.mark.sqlite_only(reason="the database as a file that --rejects could overwrite"),
        ),
        "input",
    ],
)
def test_rejects_never_replace_the_database_or_the_input(cli, db, db_path, tmp_path, target):
    source = tmp_path / "in.csv"
    source.write_bytes(b"ref,subject_name\nR1,Ann\n,no ref\n")
    rejects = db_path if target == "database" else source
    r = cli("import", str(source), "--workflow", "simple", "--skip-invalid", "--rejects", str(rejects), expect=None)
    assert r.exit_code == 6, r.output
    assert source.read_bytes() == b"ref,subject_name\nR1,Ann\n,no ref\n"
    assert cli.json("db", "check", "--json", expect=None)["ok"]


@pytest.mark.parametrize(
    "encoding",
    [
        "utf-8",
        "UTF8",
        "utf-8-sig",
        "latin-1",
        "cp1252",
        "utf-16",
        "utf-32",
        "utf-7",
        "idna",
        "punycode",
        "unicode_escape",
        "undefined",
        "bogus",
        "",
        "utf-8\u00e9",
        "x" * 1000,
        "rot13",
        "base64",
        "hex",
        "zlib_codec",
        "bz2",
        "uu",
    ],
)
def test_any_encoding_name_is_a_documented_exit(cli, db, db_path, tmp_path, encoding):
    source = tmp_path / "in.csv"
    source.write_bytes(b"ref,subject_name\nE1,Ann\n")
    before = fingerprint(db_path)
    r = cli("import", str(source), "--workflow", "simple", "--encoding", encoding, expect=None)
    assert r.exit_code in DOCUMENTED and "Traceback" not in r.output, (r.exit_code, r.output)
    if r.exit_code != 0:
        assert fingerprint(db_path) == before
        assert r.stderr.startswith("casectl: error: ") and not RAW_CONTROL.search(r.stderr), r.stderr
    else:
        assert cli.json("db", "check", "--json")["ok"]


# --- the mapping file (--map): a JSON document that steers how every cell is read ------

TARGETS = ["ref", "subject_name", "subject_email", "subject_dob", "priority", "tags", "status", "country", "data",
           "company.reg_no", "data.n", "registry_data.status", "a..b", ".x", "", "ref.x"]  # fmt: skip
CONVERTS = ["strip", "upper", "lower", "title", "date", "int", "number", "bool", "json", "split", "nope"]
FORMATS = ["%d/%m/%Y", "%Y", "%", "%Q", "%s", "%Y-%m-%d %H", "", "%%", "%d%d%d"]
MAP_CELLS = ["", "1", "-1", "1e400", "NaN", "9" * 5000, "31/12/2020", "2020", "yes", "no", "[1", '{"a":' * 2000, "a;b;;c",
             "H", "=1", "\x00", "\udcff"]  # fmt: skip


@st.composite
def mapped_import(draw) -> tuple[dict, bytes]:
    headers = draw(st.lists(st.sampled_from(["Id", "Name", "When", "Num", "Kind", "ref"]), min_size=1, max_size=5))
    columns: dict = {}
    for h in headers:
        columns[h] = draw(
            st.one_of(
                st.sampled_from(TARGETS),
                st.none(),
                st.fixed_dictionaries(
                    {"to": st.sampled_from(TARGETS)},
                    optional={
                        "convert": st.sampled_from(CONVERTS),
                        "format": st.sampled_from(FORMATS),
                        "separator": st.sampled_from([";", "", ",", "\x00", "ab"]),
                        "values": st.dictionaries(st.sampled_from(MAP_CELLS), st.sampled_from(["high", "x", 1, True])),
                        "ignore": st.booleans(),
                    },
                ),
            )
        )
    doc = draw(
        st.fixed_dictionaries(
            {"columns": st.just(columns)},
            optional={
                "workflow": st.sampled_from(["simple", "kyb", "", "nope"]),
                "defaults": st.dictionaries(st.sampled_from(TARGETS), st.sampled_from(["high", "x", 1, 1.5, True])),
                "unmapped": st.sampled_from(["data", "ignore", "error", "other"]),
                "required": st.lists(st.sampled_from(TARGETS), max_size=3),
            },
        )
    )
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(headers)
    base = draw(st.integers(0, 10**9))
    for i in range(draw(st.integers(0, 4))):
        w.writerow([draw(st.sampled_from([*MAP_CELLS, f"M{base}-{i}"])) for _ in headers])
    return doc, out.getvalue().encode("utf-8", "surrogateescape")


@FUZZ
@given(case=mapped_import())
@example(
    case=(
        {"columns": {"When": {"to": "subject_dob", "convert": "date", "format": "%"}}, "unmapped": "ignore"},
        b"When,ref\n31/12/2020,MX1\n",
    )
)
def test_random_mappings(cli, db, db_path, tmp_path, case):
    doc, data = case
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps(doc))
    check_import(cli, db_path, data, tmp_path / "mapped.csv", "--map", str(mapping))
