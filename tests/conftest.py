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


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the database every test's CASECTL_DB names: a SQLite file (default) or a schema of its own "
        "in a throw-away PostgreSQL cluster (tests/pg_cluster.py)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only(reason): the test is about SQLite itself (files, WAL, pragmas)")
    config.addinivalue_line("markers", "postgresql_only(reason): the test is about PostgreSQL itself")
    global BACKEND
    BACKEND = config.getoption("--backend")


BACKEND = "sqlite"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BACKEND == "postgresql" and item.get_closest_marker("sqlite_only"):
            reason = item.get_closest_marker("sqlite_only").kwargs.get("reason") or "about SQLite itself"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
        if BACKEND == "sqlite" and item.get_closest_marker("postgresql_only"):
            item.add_marker(pytest.mark.skip(reason="PostgreSQL only (run with --backend postgresql)"))


_CLUSTER = None


def pg_cluster():
    """The session's PostgreSQL cluster, started on first use."""
    global _CLUSTER
    if _CLUSTER is None:
        from pg_cluster import Cluster

        _CLUSTER = Cluster().start()
    return _CLUSTER


@pytest.fixture
def backend() -> str:
    return BACKEND


# The OS account running the tests: history shows it beside an actor that is someone else.
LOGIN = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def db_target(tmp_path):
    """What CASECTL_DB names for this test: a file in its tmp_path, or its own PostgreSQL schema."""
    if BACKEND == "sqlite":
        yield tmp_path / "cases.db"
        return
    cluster = pg_cluster()
    schema = cluster.new_schema()
    yield cluster.url(schema=schema)
    cluster.drop_schema(schema)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch, db_target):
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CASECTL_DB", str(db_target))
    monkeypatch.setenv("CASECTL_ACTOR", "tester")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # no test reads a real config file
    monkeypatch.setenv("CASECTL_NO_DELIVER", "1")  # tests that deliver turn it back on
    monkeypatch.setenv("CASECTL_ALLOW_PRIVATE_TARGETS", "1")  # the tests' receivers listen on 127.0.0.1
    monkeypatch.setenv("CASECTL_ALLOW_CLOCK", "1")  # tests pin the clock with CASECTL_NOW
    yield


@pytest.fixture
def db_path(db_target):
    """The test's database: a Path on SQLite, the connection string on PostgreSQL."""
    return db_target


def raw_connect(target):
    """A connection straight to the test's database, below casectl's commands (sqlite3's API on
    both backends: `?` parameters, rows by name; store/pg.py gives PostgreSQL that face)."""
    if isinstance(target, str) and target.startswith("postgresql://"):
        from casectl.store import pg

        return pg.connect(target, busy_timeout=10)
    conn = sqlite3.connect(target)
    conn.row_factory = sqlite3.Row
    return conn


def tables(conn) -> list[str]:
    """The database's tables (without SQLite's internal ones and the search index's shadows)."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        rows = conn.execute(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        return [r[0] for r in rows]
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [r[0] for r in rows if not r[0].startswith("sqlite_")]


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
    conn = raw_connect(db_path)
    try:
        return {t: sorted((tuple(r) for r in conn.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables(conn)}
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
    conn = raw_connect(db_path)
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY id")]
    finally:
        conn.close()
