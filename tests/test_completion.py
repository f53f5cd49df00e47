"""Shell completion: the scripts `casectl completion SHELL` prints, and what the shell gets back
when it asks (`_CASECTL_COMPLETE=bash_complete COMP_WORDS=... casectl`), through real processes
on a database built with the CLI."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from casectl.cli import completion

from conftest import casectl_bin, snapshot

sqlite_only = pytest.mark.sqlite_only


@pytest.fixture
def complete(tmp_path):
    """Ask casectl for completions as the shell's script does; returns the values offered (and,
    with `full=True`, the finished process). Each test has its own cache of the command table."""
    cache = tmp_path / "cache"

    def _complete(line: str, *, shell: str = "bash", env: dict | None = None, full: bool = False):
        words = line.split(" ")
        asked = {"_CASECTL_COMPLETE": f"{shell}_complete", "COMP_WORDS": line}
        asked["COMP_CWORD"] = words[-1] if shell == "fish" else str(len(words) - 1)
        done = subprocess.run(
            [casectl_bin()],
            capture_output=True,
            text=True,
            env={**os.environ, "XDG_CACHE_HOME": str(cache), **asked, **(env or {})},
            timeout=60,
        )
        values = _values(done.stdout, shell)
        return (values, done) if full else values

    return _complete


def _values(out: str, shell: str) -> list[str]:
    lines = out.splitlines()
    if shell == "zsh":  # type, value, help: three lines an item
        return [lines[i + 1] for i in range(0, len(lines) - 2, 3)]
    if shell == "fish":  # type,value<TAB>help
        return [line.split(",", 1)[1].split("\t")[0] for line in lines if line]
    return [line.split(",", 1)[1] for line in lines if line]  # bash: type,value


@pytest.fixture
def cases(cli, db):
    """Twelve cases, C-1 to C-12, C-12 with a passport document block."""
    for i in range(1, 12):
        cli("create", "--workflow", "simple" if i % 2 else "kyb", "--subject-email", f"s{i}@example.com")
    cli("create", "--workflow", "kyb", "--subject-email", "s12@example.com", "--block", "document:passport")
    return db


# --- the scripts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marks"),
    [
        ("bash", ["_casectl_completion()", "_CASECTL_COMPLETE=bash_complete", "complete -o nosort -F"]),
        ("zsh", ["#compdef casectl", "_CASECTL_COMPLETE=zsh_complete"]),
        ("fish", ["_CASECTL_COMPLETE=fish_complete", "complete --no-files --command casectl"]),
    ],
)
def test_each_shell_gets_clicks_script_for_casectl(run, shell, marks):
    done = run("completion", shell)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for mark in marks:
        assert mark in done.stdout


def test_an_unknown_shell_is_a_usage_error_in_one_line(run):
    done = run("completion", "tcsh")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == ["casectl: error: no completion for the shell 'tcsh'; shells: bash, zsh, fish"]


def test_the_shell_argument_completes(complete):
    assert complete("casectl completion ") == ["bash", "zsh", "fish"]


# --- commands and options ------------------------------------------------------------


def test_a_command_prefix_completes_to_the_command(complete):
    assert complete("casectl li") == ["list"]
    assert complete("casectl app") == ["approve", "appointment", "appointments"]


def test_every_command_is_offered_with_its_help(complete):
    from casectl.cli.app import COMMANDS

    assert complete("casectl ") == list(COMMANDS)
    values, done = complete("casectl sh", shell="zsh", full=True)
    assert values == ["show"]
    assert done.stdout.splitlines()[2] == COMMANDS["show"].help


def test_an_option_prefix_completes_to_the_option(complete):
    assert complete("casectl list --st") == ["--status"]
    assert complete("casectl show C-1 --js") == ["--json"]
    assert complete("casectl --ac") == ["--actor"]


def test_a_group_completes_its_commands(complete):
    assert complete("casectl views ") == ["add", "list", "rm"]
    assert complete("casectl workflows s") == ["show"]


# --- values from the rules and the database --------------------------------------------


def test_workflow_names_are_the_built_ins_and_the_databases(cli, db, complete, tmp_path):
    wf = {"name": "mailer", "initial": "open", "statuses": [{"name": "open"}, {"name": "done", "final": True}]}
    wf["actions"] = [{"name": "finish", "from": ["open"], "to": "done", "decision": "approved"}]
    (tmp_path / "mailer.json").write_text(json.dumps(wf))
    cli("workflows", "add", str(tmp_path / "mailer.json"))
    names = complete("casectl list --workflow ")
    assert {"kyb", "simple", "screening", "mailer"} <= set(names)
    assert names == sorted(names)
    assert complete("casectl create -w ma") == ["mailer"]
    assert complete("casectl workflows show sc") == ["screening"]


def test_statuses_are_those_of_every_workflow_or_of_the_one_typed(db, complete):
    from casectl import rules

    everything = sorted({s.name for wf in rules.BUILTIN.values() for s in wf.statuses})
    assert complete("casectl list --status ") == everything
    assert complete("casectl list --status man") == ["manual_review"]
    simple = sorted(s.name for s in rules.BUILTIN["simple"].statuses)
    assert complete("casectl list --workflow simple --status ") == simple
    assert complete("casectl export -w simple -s ") == simple


def test_a_cases_own_statuses_actions_and_events(cases, complete):
    # C-11 runs on simple (open), C-12 on kyb (collection_flow: no agent action, one system event).
    assert complete("casectl act C-11 ") == ["approve", "decline"]
    assert complete("casectl act C-12 ") == []
    assert complete("casectl event C-12 ") == ["collection_completed"]
    assert complete("casectl status C-11 ") == ["pending", "approved", "declined"]
    assert complete("casectl status C-12 ") == []  # kyb sets no status directly
    kyb = complete("casectl approve C-12 --expect-status ")
    assert "manual_review" in kyb and "open" not in kyb
    assert "open" in complete("casectl approve C-11 --expect-status ")


def test_view_names_saved_and_built_in(cli, db, complete):
    cli("views", "add", "hk-companies", "--country", "HK")
    assert complete("casectl list --view hk") == ["hk-companies"]
    assert "kyb-open" in complete("casectl list --view ")
    assert complete("casectl views rm ") == ["hk-companies"]  # built-in views cannot be removed


def test_block_names_of_the_case_typed(cases, complete):
    assert complete("casectl attach C-12 ") == ["data", "registry", "passport"]
    assert complete("casectl doc 12 pa") == ["passport"]
    assert complete("casectl block C-12 ") == ["add", "data", "registry", "passport"]
    assert complete("casectl block C-12 passport ") == ["set", "approve", "reupload", "received"]
    assert complete("casectl block C-12 add ") == ["user_data", "registry_data", "enriched", "document", "kyc"]
    assert complete("casectl attach C-99 ") == []  # no such case: nothing, and no error


def test_priorities_users_and_choices(cli, cases, complete):
    assert complete("casectl priority C-1 ") == ["low", "normal", "high", "urgent"]
    assert complete("casectl list --priority h") == ["high"]
    cli("users", "add", "mei", "--role", "lead")
    assert complete("casectl assign C-1 ") == ["mei"]
    assert complete("casectl list --assignee m") == ["mei"]
    assert complete("casectl list --format n") == ["ndjson"]
    assert complete("casectl appointment C-1 ") == ["add", "cancel"]
    assert complete("casectl list --sort cr") == ["created", "created_at"]


def test_case_ids_match_the_digits_typed_most_recent_first(cases, complete):
    assert complete("casectl show C-1") == ["C-12", "C-11", "C-10", "C-1"]
    assert complete("casectl show 1") == ["12", "11", "10", "1"]
    assert complete("casectl show c1") == ["c12", "c11", "c10", "c1"]
    assert complete("casectl show C-2") == ["C-2"]
    assert complete("casectl show C-13") == []
    assert complete("casectl show ")[:3] == ["C-12", "C-11", "C-10"]
    assert complete("casectl list --parent C-11") == ["C-11"]


def test_commands_that_read_ids_from_stdin_offer_a_dash(cases, complete):
    assert complete("casectl act ")[:2] == ["-", "C-12"]
    assert "-" not in complete("casectl show ")


def test_at_most_fifty_ids(cli, db, complete, backend):
    for i in range(55):
        cli("create", "--workflow", "simple", "--subject-email", f"n{i}@example.com")
    offered = complete("casectl show ")
    assert len(offered) == completion.MOST_IDS
    assert offered[0] == "C-55" and offered[-1] == "C-6"


def test_the_db_option_before_or_after_the_command_names_the_database(cli, cases, complete, tmp_path, backend):
    other = tmp_path / "other.db"
    cli("init", "--db", str(other))
    env = {"CASECTL_DB": str(tmp_path / "absent.db")}
    target = str(cases)
    assert complete(f"casectl --db {target} show C-1", env=env) == ["C-12", "C-11", "C-10", "C-1"]
    assert complete(f"casectl show --db {target} C-1", env=env) == ["C-12", "C-11", "C-10", "C-1"]
    assert complete(f"casectl --db {target} show --db {other} C-1", env=env) == []  # after the command wins


def test_zsh_and_fish_get_the_values_with_their_help(cases, complete):
    values, done = complete("casectl show C-12", shell="zsh", full=True)
    assert values == ["C-12"]
    assert done.stdout.splitlines()[2] == "kyb collection_flow"
    values, done = complete("casectl show C-1", shell="fish", full=True)
    assert values == ["C-12", "C-11", "C-10", "C-1"]
    assert done.stdout.splitlines()[0] == "plain,C-12\tkyb collection_flow"


# --- never in the way: no database, a locked one, a server out of reach ---------------------


@sqlite_only(reason="a missing SQLite file (a missing PostgreSQL server is the test below)")
def test_a_missing_database_gives_no_values_and_says_nothing(complete, tmp_path):
    missing = tmp_path / "nowhere" / "cases.db"
    for line in ("casectl show C-1", "casectl views rm ", "casectl attach C-1 ", "casectl assign C-1 "):
        values, done = complete(line, env={"CASECTL_DB": str(missing)}, full=True)
        assert (values, done.returncode, done.stderr) == ([], 0, "")
    assert not missing.parent.exists()  # nothing was created
    # What needs no database still completes: commands, options, the built-in workflows and views.
    assert complete("casectl li", env={"CASECTL_DB": str(missing)}) == ["list"]
    assert "kyb" in complete("casectl list -w ", env={"CASECTL_DB": str(missing)})
    assert "kyb-open" in complete("casectl list --view ", env={"CASECTL_DB": str(missing)})


@sqlite_only(reason="a SQLite file locked by another program")
def test_a_locked_database_gives_no_values_at_once(cases, complete):
    import gc

    gc.collect()  # connections the in-process CLI left behind would keep the lock from being taken
    # In WAL mode readers wait only for a connection in exclusive locking mode that has written.
    lock = sqlite3.connect(cases, isolation_level=None)
    lock.execute("PRAGMA locking_mode = EXCLUSIVE")
    lock.execute("BEGIN EXCLUSIVE")
    lock.execute("CREATE TABLE lock_probe (x)")
    try:
        started = time.monotonic()
        values, done = complete("casectl show C-1", full=True)
        assert (values, done.returncode, done.stderr) == ([], 0, "")
        assert time.monotonic() - started < 5
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert complete("casectl show C-1") == ["C-12", "C-11", "C-10", "C-1"]


@sqlite_only(reason="the file's own bytes, modes and side files")
def test_completion_opens_the_file_read_only_and_never_migrates(cases, complete):
    conn = sqlite3.connect(cases)
    conn.execute("PRAGMA user_version = 1")  # as if written by an older casectl
    conn.commit()
    conn.close()
    before = cases.read_bytes()
    values, done = complete("casectl show C-1", full=True)
    assert (values, done.returncode, done.stderr) == ([], 0, "")
    assert cases.read_bytes() == before


def test_a_postgresql_server_out_of_reach_gives_no_values_at_once(complete):
    env = {"CASECTL_DB": "postgresql://casectl@127.0.0.1:9/cases?connect_timeout=1"}
    started = time.monotonic()
    values, done = complete("casectl show C-1", env=env, full=True)
    assert (values, done.returncode, done.stderr) == ([], 0, "")
    assert time.monotonic() - started < 10


def test_completing_writes_nothing_to_the_database(cli, cases, complete):
    cli("users", "add", "mei", "--role", "lead")
    cli("views", "add", "hk", "--country", "HK")
    before = snapshot(cases)
    for line in ("casectl show C-1", "casectl act C-11 ", "casectl attach C-12 ", "casectl list --view "):
        assert complete(line), line
    assert snapshot(cases) == before


# --- fast: the command table, and the primary key ---------------------------------------


def test_completing_an_id_imports_no_command_module_once_the_table_is_cached(cases, tmp_path):
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "_CASECTL_COMPLETE": "bash_complete",
        "COMP_WORDS": "casectl show C-1",
        "COMP_CWORD": "2",
    }
    probe = (
        "import sys\n"
        "from casectl.cli.app import main\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('casectl'))), file=sys.stderr)\n"
    )
    first = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert "casectl.cli.cases" in first.stderr.split()  # the table was described from the real commands
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert again.stdout == first.stdout
    assert first.stdout.splitlines() == ["plain,C-12", "plain,C-11", "plain,C-10", "plain,C-1"]
    loaded = set(again.stderr.split())
    assert not loaded & {"casectl.cli.cases", "casectl.services.cases", "casectl.services.lifecycle"}, loaded


def test_a_changed_cli_module_describes_the_table_again(tmp_path, monkeypatch):
    where = tmp_path / "completion.json"
    completion._save(where, "key-1", {"list": {"short_help": "", "hidden": False, "context": {}, "params": []}})
    assert completion._load(where, "key-1") is not None
    assert completion._load(where, "key-2") is None  # another casectl, or a module changed
    where.write_text("{not json")
    assert completion._load(where, "key-1") is None


def test_the_cached_table_gives_click_every_command_as_the_real_one():
    import click
    import typer
    from casectl.cli.app import app

    root = typer.main.get_group(app)
    ctx = click.Context(root, info_name="casectl")
    described = json.loads(json.dumps(completion.describe(root)))

    def same(real: click.Command, light: click.Command, path: str) -> None:
        assert real.get_short_help_str() == light.get_short_help_str(), path
        for key in completion._CONTEXT_KEYS:
            assert real.context_settings.get(key) == light.context_settings.get(key), (path, key)
        if isinstance(real, click.Group):
            assert isinstance(light, click.Group) and list(real.commands) == list(light.commands), path
            for name in real.commands:
                same(real.commands[name], light.commands[name], f"{path} {name}")
            return

        def shape(p: click.Parameter) -> tuple:
            extra = (p.is_flag, p.count, p.hidden, p.help) if isinstance(p, click.Option) else ()
            return (type(p) is click.Argument or isinstance(p, click.Argument), p.name, p.opts, p.secondary_opts,
                    p.nargs, p.multiple, p.required, p.metavar, completion._kind_of(p.type), *extra)  # fmt: skip

        assert [shape(p) for p in real.params] == [shape(p) for p in light.params], path

    for name in root.list_commands(ctx):
        real = root.get_command(ctx, name)
        assert real is not None
        same(real, completion.build(name, described[name]), name)


@pytest.mark.parametrize("top", [1, 9, 10, 12, 99, 100, 1234, 100_000])
def test_id_ranges_are_exactly_the_ids_with_the_prefix_highest_first(top):
    for digits in ["1", "2", "9", "10", "12", "123", "99", "100", "0", "05", "1234", "12345"]:
        ranges = completion.id_ranges(digits, top)
        ids = [n for lo, hi in ranges for n in range(hi, lo - 1, -1)]
        assert ids == sorted((n for n in range(1, top + 1) if str(n).startswith(digits)), reverse=True), digits


@sqlite_only(reason="SQLite's query plan")
def test_case_ids_are_read_off_the_primary_key(db):
    from casectl.filters import CaseFilter
    from casectl.store import cases as case_store

    sql, params = case_store.select_sql(CaseFilter(), sort="id", descending=True, limit=50, after=(None, 130))
    conn = sqlite3.connect(db)
    plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    conn.close()
    assert "SEARCH c USING INTEGER PRIMARY KEY (rowid<?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


# --- the script in a real bash ------------------------------------------------------------


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_sources_the_script_and_completes(cases, tmp_path):
    script = (
        'eval "$(casectl completion bash)"\n'
        # bash empties COMPREPLY before it calls a completion function; so does this script
        "COMPREPLY=(); COMP_WORDS=(casectl show C-1); COMP_CWORD=2; _casectl_completion casectl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMPREPLY=(); COMP_WORDS=(casectl li); COMP_CWORD=1; _casectl_completion casectl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {
        **os.environ,
        "PATH": f"{Path(casectl_bin()).parent}{os.pathsep}{os.environ['PATH']}",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["C-12", "C-11", "C-10", "C-1", "list"]
