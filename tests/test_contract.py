"""The contract as scripts see it: the installed `casectl` in real processes, no terminal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from conftest import casectl_bin

ANSI = re.compile(r"\x1b\[")


def test_no_colour_or_decoration_in_pipes(run, db):
    assert run("create", "--workflow", "kyb", "--subject-name", "Zoë").returncode == 0
    for args in (["--help"], ["list"], ["show", "C-1"], ["workflows", "show", "kyb"], ["history", "C-1"]):
        p = run(*args)
        assert p.returncode == 0, p.stderr
        assert not ANSI.search(p.stdout) and not ANSI.search(p.stderr), args
    assert run("list").stdout.startswith("C-1\t\tkyb\tcollection_flow\tZoë\t")


def test_exit_codes_from_a_real_process(run, db, tmp_path):
    assert run("show", "C-404").returncode == 3
    assert run("list", "--db", str(tmp_path / "missing.db")).returncode == 3
    assert run("list", "--bogus").returncode == 2
    assert run("create", "--workflow", "kyb", "--subject-email", "bad").returncode == 6
    cid = run("create", "--workflow", "kyb").stdout.strip()
    p = run("approve", cid)
    assert p.returncode == 4 and p.stderr.startswith("casectl: error: cannot approve case C-1")
    assert "Traceback" not in p.stderr
    assert run("approve", cid, "--expect-status", "manual_review").returncode == 5


def test_json_output_parses(run, db):
    run("create", "--workflow", "simple", "--ref", "X1")
    for args in (
        ["show", "X1", "--json"],
        ["list", "--json"],
        ["history", "X1", "--json"],
        ["workflows", "list", "--json"],
        ["subjects", "list", "--json"],
        ["db", "check", "--json"],
    ):
        p = run(*args)
        assert p.returncode == 0, (args, p.stderr)
        json.loads(p.stdout)


def test_a_shell_script_drives_a_kyb_case_to_approved(db, tmp_path):
    script = tmp_path / "onboard.sh"
    script.write_text(
        textwrap.dedent(f"""\
        set -u
        casectl() {{ "{casectl_bin()}" "$@"; }}
        id=$(casectl create --workflow kyb --ref ACME-1 --subject-email ops@acme.example --entity-type company --country GB) || exit 10
        casectl approve "$id" 2>/dev/null
        [ $? -eq 4 ] || exit 11
        casectl event "$id" collection_completed >/dev/null || exit 12
        casectl approve "$id" --expect-status manual_review >/dev/null || exit 13
        casectl approve "$id" 2>/dev/null
        [ $? -eq 4 ] || exit 14
        casectl show ACME-1 --json
        """)
    )
    p = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    doc = json.loads(p.stdout)
    assert doc["status"] == "approved" and doc["id"] == "C-1"


def test_help_lists_every_command_quickly(run):
    p = run("--help")
    assert p.returncode == 0
    from casectl.cli.app import COMMANDS

    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", p.stdout, re.M), name


def test_cli_start_up_does_not_import_heavy_modules():
    code = (
        "import sys, casectl.cli.app; "
        "heavy = ['reportlab', 'requests', 'smtplib', 'sqlite_utils', 'tabulate', 'jsonschema', 'pypdf', 'rich']; "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_in_a_pipe_imports_no_heavy_modules(db):
    code = (
        "import sys; from casectl.cli.app import main; sys.argv = ['casectl', 'list', '--status', 'open'];\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ['reportlab', 'requests', 'smtplib', 'sqlite_utils', 'tabulate', 'jsonschema']\n"
        "print([m for m in heavy if m in sys.modules], file=sys.stderr)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stderr.strip().splitlines()[-1] == "[]", p.stderr
