"""Shared fixtures. Every test gets its own database path through CASECTL_DB,
so no test can touch a real one, and a pinned actor and clock."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from casectl.cli.app import app
from typer.testing import CliRunner

ENV_KEYS = [k for k in os.environ if k.startswith("CASECTL_")]
# The OS account running the tests: history shows it beside an actor that is someone else.
LOGIN = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CASECTL_DB", str(tmp_path / "cases.db"))
    monkeypatch.setenv("CASECTL_ACTOR", "tester")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # no test reads a real config file
    monkeypatch.setenv("CASECTL_NO_DELIVER", "1")  # tests that deliver turn it back on
    monkeypatch.setenv("CASECTL_ALLOW_PRIVATE_TARGETS", "1")  # the tests' receivers listen on 127.0.0.1
    monkeypatch.setenv("CASECTL_ALLOW_CLOCK", "1")  # tests pin the clock with CASECTL_NOW
    yield


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "cases.db"


class Cli:
    """Runs casectl in-process with Typer's CliRunner; stdout and stderr apart."""

    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, env: dict | None = None, expect: int | None = 0):
        result = self.runner.invoke(app, [str(a) for a in args], input=input, env=env, catch_exceptions=False)
        if expect is not None and result.exit_code != expect:
            raise AssertionError(
                f"casectl {' '.join(map(str, args))} exited {result.exit_code}, expected {expect}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def json(self, *args: str, **kw):
        return json.loads(self(*args, **kw).stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def db(cli, db_path) -> Path:
    cli("init")
    return db_path


def casectl_bin() -> str:
    found = shutil.which("casectl", path=str(Path(sys.executable).parent)) or shutil.which("casectl")
    assert found, "the casectl console script is not installed"
    return found


@pytest.fixture
def run():
    """Runs the installed `casectl` script as a real process, with no terminal."""

    def _run(*args: str, input: str | bytes | None = None, env: dict | None = None, timeout: float = 60):
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [casectl_bin(), *map(str, args)],
            input=input,
            capture_output=True,
            text=not isinstance(input, bytes),
            env=full_env,
            timeout=timeout,
        )

    return _run


def snapshot(db_path) -> dict:
    """Every row of every table: equal before and after means nothing was written."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables if not t.startswith("sqlite_")}
    finally:
        conn.close()


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server (aiosmtpd) on 127.0.0.1, with CASECTL_SMTP_* pointing at it."""
    from outside_servers import SmtpServer

    with SmtpServer() as server:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        yield server


def outbox(db_path) -> list[dict]:
    """The outbox table's rows, oldest first."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY id")]
    finally:
        conn.close()
