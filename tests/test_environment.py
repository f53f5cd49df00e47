"""The machine's problems, not the command's: a full disk, a read-only or unreadable database,
a lock held by another program, a damaged or empty file. Each is one line on stderr and a
documented exit code (7, or 5 for a lock), never a traceback, and the database is left as it was.

Root writes through file modes, so read-only is made real: a read-only bind mount (in a
private mount namespace, `unshare -m`) and, for permissions, the command run as `nobody`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import casectl_bin, raw_connect, snapshot, tables

ENVIRONMENT = 7


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("casectl: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def seeded(run, db_path) -> Path:
    # In processes of their own, so that no connection of this one stays open on the database.
    for args in (["init"], ["create", "--workflow", "simple", "--ref", "R1", "--subject-name", "Ann Lee"]):
        assert run(*args).returncode == 0
    return db_path


# --- a full disk -----------------------------------------------------------------------


def test_a_full_disk_behind_stdout_is_one_line(seeded, tmp_path):
    full = tmp_path / "full"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("a private /dev/full node needs root (mknod)")
    for args in (["export"], ["list", "--format", "csv"], ["show", "C-1", "--json"]):
        with full.open("wb") as out:
            r = subprocess.run([casectl_bin(), *args], stdout=out, stderr=subprocess.PIPE, text=True)
        assert r.returncode == ENVIRONMENT, (args, r.stderr)
        assert "full" in one_error_line(r.stderr)


# --- read-only -------------------------------------------------------------------------


def in_read_only_mount(folder: Path, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Run casectl commands with `folder` bind-mounted read-only over itself (root, own namespace)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root and unshare(1)")
    script = "\n".join(
        [
            'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" || exit 99',
            'shift; out="$1"; shift',
            'i=0; for cmd in "$@"; do eval "$cmd" >"$out/$i.out" 2>"$out/$i.err"; echo $? >"$out/$i.rc"; i=$((i+1)); done',
        ]
    )
    out = Path(tempfile.mkdtemp())
    quoted = [" ".join([casectl_bin(), *(f"'{a}'" for a in c)]) for c in commands]
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), str(out), *quoted], capture_output=True)
    if r.returncode == 99:
        pytest.skip(f"cannot make a read-only bind mount here: {r.stderr.decode()}")
    results = [
        subprocess.CompletedProcess(
            c, int((out / f"{i}.rc").read_text()), (out / f"{i}.out").read_text(), (out / f"{i}.err").read_text()
        )
        for i, c in enumerate(commands)
    ]
    shutil.rmtree(out)
    return results


@pytest.mark.sqlite_only(reason="the SQLite database file sits on a read-only file system")
def test_a_database_on_a_read_only_file_system_reads_and_refuses_writes(seeded, tmp_path):
    before = snapshot(seeded)
    outside = tmp_path.parent / f"{tmp_path.name}-export.csv"
    listed, shown, exported, created, noted = in_read_only_mount(
        tmp_path,
        ["list"],
        ["show", "C-1"],
        ["export", "-o", str(outside)],
        ["create", "--workflow", "simple"],
        ["note", "C-1", "hello"],
    )
    assert listed.returncode == 0 and "R1" in listed.stdout, listed.stderr
    assert shown.returncode == 0 and "C-1" in shown.stdout, shown.stderr
    assert exported.returncode == 0 and "R1" in outside.read_text(), exported.stderr
    outside.unlink()
    for r in (created, noted):
        assert r.returncode == ENVIRONMENT, r.stderr
        assert "read-only" in one_error_line(r.stderr)
    assert snapshot(seeded) == before


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running as another user needs root and setpriv(1)")
    folder = Path(tempfile.mkdtemp(prefix="casectl-env-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for p in folder.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(folder)


def as_nobody(*args: str, env_db: Path | str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CASECTL_DB": str(env_db), "HOME": "/nonexistent", "XDG_DATA_HOME": "/nonexistent"}
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", casectl_bin(), *args],
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.mark.sqlite_only(reason="file modes of a SQLite database file and of its write-ahead log")
def test_a_database_this_user_may_not_write_still_reads(run, shared_dir):
    folder = shared_dir / "ro"
    folder.mkdir()
    db = folder / "cases.db"
    assert run("init", "--db", db).returncode == 0
    assert run("create", "--db", db, "--workflow", "simple", "--ref", "R1").returncode == 0
    before = snapshot(db)
    db.chmod(0o444)
    folder.chmod(0o555)
    r = as_nobody("list", env_db=db)
    assert r.returncode == 0 and "R1" in r.stdout, r.stderr
    r = as_nobody("show", "R1", env_db=db)
    assert r.returncode == 0 and "C-1" in r.stdout, r.stderr
    r = as_nobody("create", "--workflow", "simple", env_db=db)
    assert r.returncode == ENVIRONMENT
    assert "read-only" in one_error_line(r.stderr)
    assert snapshot(db) == before
    # The owner has it open with changes still in its write-ahead log, which nobody may read:
    # reading around the log would show stale cases, so that is refused too.
    holder = sqlite3.connect(db)
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.execute("UPDATE cases SET priority = priority")
    holder.commit()
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").chmod(0o600)
    try:
        r = as_nobody("list", env_db=db)
        assert r.returncode == ENVIRONMENT
        assert "write-ahead log" in one_error_line(r.stderr)
    finally:
        holder.close()
    db.chmod(0o400)  # not even readable
    r = as_nobody("list", env_db=db)
    assert r.returncode == ENVIRONMENT
    assert "permission denied" in one_error_line(r.stderr)


def test_an_output_this_user_may_not_write_is_one_line(run, shared_dir, backend, db_path):
    db = shared_dir / "cases.db" if backend == "sqlite" else db_path
    assert run("init", "--db", db).returncode == 0
    if backend == "sqlite":
        db.chmod(0o644)
    closed = shared_dir / "closed"
    closed.mkdir(mode=0o755)
    r = as_nobody("export", "-o", str(closed / "x.csv"), env_db=db)
    assert r.returncode == ENVIRONMENT
    assert "permission denied" in one_error_line(r.stderr)
    assert list(closed.iterdir()) == []


# --- a lock held by another program -----------------------------------------------------

LOCKER_PG = """
import psycopg, sys
conn = psycopg.connect(sys.argv[1])
conn.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")  # what ALTER TABLE or VACUUM FULL holds
print("locked", flush=True)
sys.stdin.read()
"""

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("SELECT count(*) FROM cases").fetchone()
print("locked", flush=True)
sys.stdin.read()
"""


def test_an_exclusive_lock_held_by_another_program_is_exit_5(seeded, run, backend):
    before = snapshot(seeded)
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER if backend == "sqlite" else LOCKER_PG, str(seeded)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        for args in (["list"], ["show", "C-1"], ["create", "--workflow", "simple"], ["db", "check"]):
            r = run(*args, env={"CASECTL_BUSY_TIMEOUT": "0.2"})
            assert r.returncode == 5, (args, r.stderr)
            assert "locked" in one_error_line(r.stderr)
    finally:
        locker.communicate("", timeout=10)
    assert snapshot(seeded) == before


# --- damaged, foreign and empty files ------------------------------------------------------


@pytest.mark.sqlite_only(reason="the subject is a --db file that is not SQLite")
def test_a_file_that_is_not_sqlite_is_one_line(cli, tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    for args in (["list"], ["create", "--workflow", "simple"], ["init"]):
        r = cli(*args, "--db", garbage, expect=ENVIRONMENT)
        assert "not a usable casectl database" in one_error_line(r.stderr)


@pytest.mark.sqlite_only(reason="scribbles over a page of the SQLite file")
def test_a_damaged_database_is_one_line(seeded, run):
    conn = sqlite3.connect(seeded)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'cases'").fetchone()[0]
    conn.close()
    with seeded.open("r+b") as f:  # scribble over the cases table's first page
        f.seek(page_size * (root - 1))
        f.write(b"\x0d\xff\x00\x13" * (page_size // 4))
    for args in (["list"], ["show", "C-1"], ["create", "--workflow", "simple"], ["export"]):
        r = run(*args)
        assert r.returncode == ENVIRONMENT, (args, r.stderr)
        assert "damaged" in one_error_line(r.stderr)


def no_tables(db_path) -> bool:
    conn = raw_connect(db_path)
    try:
        return tables(conn) == []
    finally:
        conn.close()


def test_an_empty_file_is_made_a_database_by_init_only(cli, db_path, backend):
    # On PostgreSQL the test's schema is empty: the same as an empty file.
    if backend == "sqlite":
        db_path.touch()
    for args in (["list"], ["create", "--workflow", "simple"], ["show", "C-1"], ["db", "check"]):
        r = cli(*args, expect=3)
        line = one_error_line(r.stderr)
        assert "not a casectl database" in line and "casectl init" in line
        if backend == "sqlite":
            assert db_path.stat().st_size == 0
        else:
            assert no_tables(db_path)
    cli("init")
    assert cli("create", "--workflow", "simple").stdout.strip() == "C-1"


@pytest.mark.sqlite_only(reason="the subject is a --db path that is a device, not a SQLite file")
def test_a_database_path_that_is_a_device_is_one_line(cli, tmp_path):
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("a private /dev/null node needs root (mknod)")
    r = cli("list", "--db", null, expect=ENVIRONMENT)
    assert "not a regular file" in one_error_line(r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]
