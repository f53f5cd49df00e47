"""A throw-away PostgreSQL cluster for the tests: initdb and pg_ctl in a temporary directory,
listening on 127.0.0.1 only, trusted local connections, no fsync, stopped at exit.

initdb refuses to run as root; as root the cluster belongs to the `postgres` account
(Debian's package makes it) and is started with runuser. Each test gets a schema of its
own in one database (`CASECTL_DB=postgresql://...?options=-csearch_path=t_...`), which is
far cheaper than a database per test and just as separate."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

DATABASE = "casectl"


def _bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if versions:
        return Path(versions[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def available() -> str | None:
    """None when a cluster can be started here, else why not."""
    if _bindir() is None:
        return "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres account to run the cluster as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self) -> None:
        why = available()
        if why:
            raise RuntimeError(why)
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="casectl-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stdout}{result.stderr}")

    def start(self) -> Cluster:
        assert self.bindir is not None
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"
        )
        atexit.register(self.stop)
        self.admin(f"CREATE DATABASE {DATABASE}")
        self.admin("CREATE EXTENSION IF NOT EXISTS unaccent", database=DATABASE)
        return self

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
            )
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = DATABASE, *, user: str | None = None, schema: str | None = None) -> str:
        base = f"postgresql://{user or self.user}@127.0.0.1:{self.port}/{database}"
        return base + (f"?options=-csearch_path%3D{schema},public" if schema else "")

    def admin(self, sql: str, *, database: str = "postgres", params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cur = conn.execute(sql, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def new_schema(self) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        self.admin(f"CREATE SCHEMA {name}", database=DATABASE)
        return name

    def drop_schema(self, name: str) -> None:
        for _ in range(3):
            try:
                self.admin(f"DROP SCHEMA IF EXISTS {name} CASCADE", database=DATABASE)
                return
            except Exception:  # a test's process may still hold a lock for a moment
                time.sleep(0.2)
