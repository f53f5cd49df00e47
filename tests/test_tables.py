"""Tables for people: on a terminal they fit its width (the widest columns cut first, with an
ellipsis; `--wide` for everything), wide characters align (wcwidth), local times say their zone.
In a pipe the same listings stay whole, tab-separated and in UTC; `history` too, event id first.

The terminal here is a real one: casectl runs on a pseudo-terminal (pty) of a set size."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import termios

import pytest
from casectl.cli.output import display_width, fit_widths, render_table, truncate

from conftest import casectl_bin

CLOCK = "2026-12-02T09:40:00Z"
LONG_NAME = "山田太郎 (やまだ たろう) Yamada Holdings Kabushiki Kaisha International"
LONG_REF = "a-very-long-external-reference-0000123456789"


def on_terminal(*args: str, columns: int = 80, env: dict | None = None) -> tuple[str, str, int]:
    """casectl ARGS with stdout on a pty `columns` wide (no $COLUMNS unless `env` sets it)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | (env or {})
    proc = subprocess.Popen([casectl_bin(), *args], stdout=slave, stderr=subprocess.PIPE, env=full_env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed: the process is done writing
            break
        if not chunk:
            break
        seen += chunk
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.wait(timeout=60)
    os.close(master)
    return seen.decode().replace("\r\n", "\n"), err, proc.returncode


@pytest.fixture
def people(cli, db, monkeypatch):
    """Four cases whose names and references are long, Chinese, Japanese, or combining accents."""
    monkeypatch.setenv("CASECTL_NOW", CLOCK)
    cli("create", "--workflow", "simple", "--subject-name", "张伟", "--ref", "REF-1", "--assignee", "李小龙")
    cli("create", "--workflow", "simple", "--subject-name", LONG_NAME, "--ref", LONG_REF, "--priority", "urgent")
    cli("create", "--workflow", "kyb", "--subject-name", "Zoe\u0308 Mu\u0308ller")  # e and u + combining diaeresis
    cli("create", "--workflow", "simple", "--status", "pending", "--subject-name", "佐藤花子", "--ref", "東京-0042")
    return cli


# The exact screen at 80 columns in Tokyo: every line 80 cells, the columns aligned under
# the dashes, the Japanese and Chinese cells padded by their width, not their length.
SCREEN_80 = """\
id   ref       workflow  status    subject  assignee  priority  created (+09:00)
---  --------  --------  --------  -------  --------  --------  ----------------
C-1  REF-1     simple    open      张伟     李小龙    normal    2026-12-02 18:40
C-2  a-very-…  simple    open      山田太…            urgent    2026-12-02 18:40
C-3            kyb       collect…  Zoe\u0308 Mu\u0308…            normal    2026-12-02 18:40
C-4  東京-00…  simple    pending   佐藤花…            normal    2026-12-02 18:40
"""


def columns_of(screen: str) -> list[tuple[int, int]]:
    """The (start, end) cells of each column, from the dashes under the header."""
    dashes = screen.splitlines()[1]
    spans, start = [], None
    for i, ch in enumerate(dashes + " "):
        if ch == "-" and start is None:
            start = i
        elif ch != "-" and start is not None:
            spans.append((start, i))
            start = None
    return spans


def cells(line: str) -> list[str]:
    """A line as terminal cells: a wide character takes two (the second is ''), a combining mark none."""
    out: list[str] = []
    for ch in line:
        w = display_width(ch)
        if w == 0 and out:
            out[-1] += ch
        else:
            out += [ch] + [""] * (w - 1)
    return out


def test_a_table_on_an_80_column_terminal_fits_and_aligns_wide_characters(people):
    screen, err, code = on_terminal("list", env={"TZ": "Asia/Tokyo"})
    assert code == 0 and err == ""
    assert screen == SCREEN_80
    lines = screen.splitlines()
    assert all(display_width(line) <= 80 for line in lines)
    spans = columns_of(screen)
    for line in lines[2:]:
        row = cells(line)
        for start, _ in spans[1:]:
            # Two spaces before every column, and no wide character straddles its start.
            assert row[start - 2 : start] == [" ", " "] and row[start] != "", (line, start)


def test_the_terminal_size_comes_from_the_terminal_or_columns(people):
    wide_screen, _, _ = on_terminal("list", columns=200, env={"TZ": "UTC"})
    assert LONG_NAME in wide_screen and LONG_REF in wide_screen and "…" not in wide_screen
    assert "created (UTC)" in wide_screen and "2026-12-02 09:40" in wide_screen
    # $COLUMNS wins over what the terminal says, as shutil.get_terminal_size reads it.
    narrow, _, _ = on_terminal("list", columns=200, env={"COLUMNS": "72", "TZ": "UTC"})
    lines = narrow.splitlines()
    assert max(display_width(line) for line in lines) == 72
    # The id and the time are never cut; past the headers' room a header is cut like a cell.
    assert [line.split()[0] for line in lines[2:]] == ["C-1", "C-2", "C-3", "C-4"]
    assert all(line.endswith("2026-12-02 09:40") for line in lines[2:])
    assert lines[0].startswith("id   ref      workfl…  status   subje…")
    # Narrower than the floors (six cells a column, the id and the time whole): the table stays readable.
    tiny, _, _ = on_terminal("list", columns=40, env={"TZ": "UTC"})
    assert {display_width(line) for line in tiny.splitlines()[1:]} == {69}


def test_wide_shows_every_cell_whole(people):
    screen, _, code = on_terminal("list", "--wide", env={"TZ": "Asia/Tokyo"})
    assert code == 0 and "…" not in screen
    assert LONG_NAME in screen and LONG_REF in screen and "collection_flow" in screen
    assert max(display_width(line) for line in screen.splitlines()) > 80
    row = cells(screen.splitlines()[3])  # C-2: the long one
    start = columns_of(screen)[4][0]
    assert "".join(row[start : start + display_width(LONG_NAME)]) == LONG_NAME


def test_a_pipe_gets_whole_tab_separated_rows_in_utc(people, run):
    p = run("list", env={"TZ": "Asia/Tokyo", "COLUMNS": "40"})
    assert p.returncode == 0
    assert p.stdout == (
        f"C-1\tREF-1\tsimple\topen\t张伟\t李小龙\tnormal\t{CLOCK}\n"
        f"C-2\t{LONG_REF}\tsimple\topen\t{LONG_NAME}\t\turgent\t{CLOCK}\n"
        f"C-3\t\tkyb\tcollection_flow\tZoe\u0308 Mu\u0308ller\t\tnormal\t{CLOCK}\n"
        f"C-4\t東京-0042\tsimple\tpending\t佐藤花子\t\tnormal\t{CLOCK}\n"
    )
    assert run("list", "--wide").stdout == run("list").stdout  # --wide changes nothing in a pipe


def test_times_in_two_zones_say_each_its_own(cli, db, monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", "2026-01-15T12:00:00Z")
    cli("create", "--workflow", "simple")
    monkeypatch.setenv("CASECTL_NOW", "2026-07-15T12:00:00Z")
    cli("create", "--workflow", "simple")
    screen, _, _ = on_terminal("list", "--fields", "id,created_at", env={"TZ": "Europe/Paris"})
    assert screen.splitlines() == [
        "id   created",
        "---  -----------------------",
        "C-1  2026-01-15 13:00 +01:00",
        "C-2  2026-07-15 14:00 +02:00",
    ]
    shown, _, _ = on_terminal("show", "C-1", env={"TZ": "America/St_Johns"})
    assert "created:    2026-01-15 08:30 -03:30 by tester" in shown


def test_history_on_a_terminal_and_in_a_pipe(cli, db, monkeypatch, run):
    monkeypatch.setenv("CASECTL_NOW", CLOCK)
    cli("create", "--workflow", "simple", "--subject-name", "张伟")
    cli("note", "C-1", "called 张伟 about the missing bank statement for the third time this month")
    cli("reject", "C-1", "--reason", "no statement\tafter three calls", "--actor", "ann")
    p = run("history", "C-1")
    lines = p.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["E-1", "E-2", "E-3"]
    assert all(line.count("\t") == 4 for line in lines)
    assert lines[2].split("\t") == [
        "E-3",
        CLOCK,
        lines[2].split("\t")[2],  # ann (login <whoever runs the tests>)
        "decline: open -> declined",
        "no statement after three calls",
    ]
    assert lines[2].split("\t")[2].startswith("ann (login ")
    screen, _, _ = on_terminal("history", "C-1", env={"TZ": "UTC"})
    rows = screen.splitlines()
    assert rows[0].split() == ["id", "at", "(UTC)", "who", "what", "reason"]
    assert rows[2].startswith("E-1  2026-12-02 09:40  tester") and "created in open" in rows[2]
    assert "…" in rows[3] and all(display_width(r) <= 80 for r in rows)  # the long note is cut
    wide, _, _ = on_terminal("history", "C-1", "--wide", env={"TZ": "UTC"})
    assert "for the third time this month" in wide


def test_control_characters_stay_escaped_and_tabs_do_not_break_columns(cli, db, monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", CLOCK)
    cli("create", "--workflow", "simple", "--subject-name", "Ann\x1b[2J\tX")
    screen, _, _ = on_terminal("list", env={"TZ": "UTC"})
    assert "\x1b" not in screen and "\t" not in screen
    assert "Ann\\x1b[2J X" in screen


def test_blocks_json_and_format_json_are_one_document(cli, db):
    case = cli("create", "--workflow", "kyb", "--block", "document:passport").stdout.strip()
    as_json = cli("blocks", case, "--json").stdout
    assert cli("blocks", case, "--format", "json").stdout == as_json
    doc = json.loads(as_json)
    assert doc["case"] == case and [b["name"] for b in doc["blocks"]] == ["data", "registry", "passport"]
    ndjson = [json.loads(x) for x in cli("blocks", case, "--format", "ndjson").stdout.splitlines()]
    assert ndjson == doc["blocks"]  # one block a line


TABLE_COMMANDS = [
    ["list"],
    ["search", "zhang"],
    ["history", "C-1"],
    ["blocks", "C-1"],
    ["doc", "C-1", "passport"],
    ["activities", "--all"],
    ["subjects", "list"],
    ["users", "list"],
    ["workflows", "list"],
    ["views", "list"],
    ["routines", "list"],
    ["outbox", "list"],
    ["errors"],
    ["hooks", "list"],
    ["appointments"],
    ["stats", "--by", "status"],
]


@pytest.mark.parametrize("args", TABLE_COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_that_prints_a_table_takes_wide(cli, db, args):
    cli("create", "--workflow", "kyb", "--subject-name", "Zhang Wei", "--block", "document:passport")
    assert cli(*args, "--wide").stdout == cli(*args).stdout  # in a pipe --wide changes nothing
    assert "--wide" in cli(*args, "--help").stdout


# --- the pieces ---------------------------------------------------------------------------


def test_display_width_counts_terminal_cells():
    assert display_width("abc") == 3
    assert display_width("张伟") == 4 and display_width("やまだ") == 6
    assert display_width("Zoe\u0308") == 3  # a combining mark takes no cell
    assert display_width("ＡＢ") == 4  # fullwidth Latin


def test_truncate_cuts_at_a_character_and_ends_in_an_ellipsis():
    assert truncate("abcdefgh", 8) == "abcdefgh"
    assert truncate("abcdefgh", 5) == "abcd…"
    assert truncate("张伟张伟", 8) == "张伟张伟"
    assert truncate("张伟张伟", 5) == "张伟…"
    assert truncate("张伟张伟", 4) == "张…"  # the second 张 would need two cells, only one is left
    assert truncate("Zoe\u0308 Mu\u0308ller", 5) == "Zoe\u0308 …"  # the mark stays with its letter


def test_fit_widths_shrinks_the_widest_first_and_stops_at_the_floors():
    assert fit_widths([3, 10, 40], [3, 6, 6], 80) == [3, 10, 40]  # fits as it is
    assert fit_widths([3, 10, 40], [3, 6, 6], 30) == [3, 10, 13]  # only the widest gives way
    assert fit_widths([3, 30, 40], [3, 6, 6], 40) == [3, 17, 16]  # two wide ones meet at a common cap
    assert fit_widths([3, 30, 40], [3, 6, 6], 10) == [3, 6, 6]  # the floors hold: the table is wider
    widths = fit_widths([4, 25, 8, 15, 70, 8, 8, 16], [4, 6, 8, 6, 7, 8, 8, 16], 80)
    assert sum(widths) + 2 * 7 == 80


def test_render_table_aligns_by_cells_and_numbers_to_the_right():
    text = render_table(["name", "n"], [["张伟", "7"], ["Ann", "12"]], right=[False, True])
    assert text.splitlines() == ["name   n", "----  --", "张伟   7", "Ann   12"]
