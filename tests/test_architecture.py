"""The shape of the code: one direction of dependency, and docs that cover every command."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in COMMANDS if f"casectl {name}" not in readme]
    assert not missing, f"README.md lacks: {missing}"


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
