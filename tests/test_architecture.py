"""The shape of the code: one direction of dependency, and docs that cover every command."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "casectl"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                # resolve relative imports against the file's package
                parts = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                mod = ".".join(parts + ((mod,) if mod else ()))
            found.add(mod)
    return found


def modules(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


@pytest.mark.parametrize("path", modules("rules"), ids=lambda p: p.name)
def test_rules_are_pure(path):
    bad = {
        m
        for m in imports_of(path)
        if m.split(".")[0]
        in {"sqlite3", "sqlite_utils", "typer", "click", "os", "requests", "pathlib", "io", "subprocess"}
        or m.startswith(("casectl.store", "casectl.services", "casectl.cli"))
    }
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", modules("services") + modules("store"), ids=lambda p: p.name)
def test_services_and_store_know_no_cli(path):
    bad = {m for m in imports_of(path) if m.split(".")[0] in {"typer", "click"} or m.startswith("casectl.cli")}
    assert not bad, f"{path} imports {bad}"


@pytest.mark.parametrize("path", modules("cli"), ids=lambda p: p.name)
def test_cli_writes_no_sql(path):
    assert "sqlite_utils" not in {m.split(".")[0] for m in imports_of(path)}
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s+[\w*]", text), f"SQL in {path.name}"


@pytest.mark.parametrize("path", modules("services"), ids=lambda p: p.name)
def test_services_write_no_sql(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"[\"'](SELECT|INSERT|UPDATE|DELETE) ", text), f"SQL in {path.name}"


def test_readme_documents_every_command():
    from casectl.cli.app import COMMANDS

    # README.md and the hand-written pages of docs/ (docs/commands.md is generated from --help)
    pages = [ROOT / "README.md", *(p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "commands.md")]
    readme = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    missing = [name for name in COMMANDS if f"casectl {name}" not in readme]
    assert not missing, f"README.md and docs/ lack: {missing}"


def test_readme_opens_with_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert [line.split()[0] for line in first_block.strip().splitlines()[1:]] == ["scripts/demo", "scripts/test"]


def test_every_command_has_help_and_an_example(cli):
    """`casectl --help` lists commands from a static table: it must say what each command's own help says."""
    from casectl.cli.app import COMMANDS

    for name, entry in COMMANDS.items():
        result = cli(name, "--help")
        own = " ".join(result.stdout.split("\n\n", 1)[1].split()) if "\n\n" in result.stdout else ""
        assert own.split()[:3] == entry.help.split()[:3], (name, entry.help, own[:80])
        if not entry.group:
            assert "Example:" in result.stdout, f"`casectl {name} --help` has no example"


# --- settings and shared options -----------------------------------------------------

# Environment reads left where callers without settings still need them; each names who.
ENV_READS_ALLOWED = {
    "cli/context.py": "the settings, built once in the root callback",
    "cli/app.py": "the root callback hands os.environ to Settings.from_environ",
    "store/db.py": "busy_timeout() for store/maintenance.py, and connect()'s chain key source for callers without settings",
    "timeutil.py": "now(), for services/queue.py, scripts and tests that have no settings",
}


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_the_environment_is_read_in_one_place(path):
    rel = str(path.relative_to(PKG))
    text = path.read_text(encoding="utf-8")
    if rel not in ENV_READS_ALLOWED:
        assert not re.search(r"\bos\.environ\b|\bgetenv\(", text), f"{rel} reads the environment"


@pytest.mark.parametrize("path", modules("cli"), ids=lambda p: p.name)
def test_cli_passes_nothing_through_the_context_meta(path):
    """Options are parameters of the commands that take them, settings are on ctx.obj: no hidden dictionary."""
    assert not re.search(r"\.meta\b", path.read_text(encoding="utf-8")), f"{path.name} uses ctx.meta"


FILTERED = [["list"], ["search"], ["export"], ["report"], ["stats"], ["take"], ["views", "add"]]


def _options(argv: list[str]) -> dict[str, tuple[str, ...]]:
    import typer
    from casectl.cli.app import app

    group = typer.main.get_group(app)
    ctx = group.make_context("casectl", argv + ["--help"], resilient_parsing=True)
    cmd: Any = group
    for name in argv:
        cmd = cmd.get_command(ctx, name)
    return {p.name: (tuple(p.opts), p.help) for p in cmd.params if p.name}


def test_filter_options_are_declared_once_for_every_command_that_selects_cases():
    from dataclasses import fields

    from casectl.cli.filtering import OPTIONS, FilterOptions

    assert list(OPTIONS) == [f.name for f in fields(FilterOptions)]
    reference = {k: v for k, v in _options(["list"]).items() if k in OPTIONS}
    assert set(reference) == set(OPTIONS)
    for argv in FILTERED:
        given = _options(argv)
        assert {k: given.get(k) for k in OPTIONS} == reference, argv


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan", "inf"])
def test_a_bad_busy_timeout_is_a_usage_error_naming_the_variable(cli, db, value):
    result = cli("list", env={"CASECTL_BUSY_TIMEOUT": value}, expect=2)
    assert result.stderr.strip().splitlines() == [
        f"casectl: error: CASECTL_BUSY_TIMEOUT: '{value}' is not a positive number of seconds"
    ]


def test_settings_come_from_the_environment_and_the_options(tmp_path):
    from casectl.cli.context import Settings

    env = {"CASECTL_DB": str(tmp_path / "env.db"), "CASECTL_ACTOR": "env-actor", "CASECTL_BUSY_TIMEOUT": "2.5"}
    s = Settings.from_environ(
        {**env, "CASECTL_NOW": "2026-01-02T03:04:05Z", "CASECTL_ALLOW_CLOCK": "1", "CASECTL_SMTP_HOST": "mail"}
    )
    assert (s.db_path, s.actor, s.busy_timeout, s.no_deliver) == (tmp_path / "env.db", "env-actor", 2.5, False)
    assert s.now().isoformat() == "2026-01-02T03:04:05+00:00"
    assert s.smtp_overrides == {"host": "mail"}
    after = s.with_options(db=str(tmp_path / "flag.db"), actor="flag-actor", no_deliver=True)
    assert (after.db_path, after.actor, after.no_deliver) == (tmp_path / "flag.db", "flag-actor", True)
    assert Settings.from_environ({"CASECTL_NO_DELIVER": "0", "XDG_DATA_HOME": str(tmp_path)}).db_path == (
        tmp_path / "casectl" / "casectl.db"
    )
