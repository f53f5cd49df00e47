"""Documents stream: attaching and writing back pass the bytes through in chunks (memory stays flat
for a large file), a size limit refuses larger ones before anything is written, stdin is spooled
under the same limit, and `corrupt_documents` names a stored document whose bytes were changed."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest
from casectl.store import documents as document_store
from casectl.store import migrations

from conftest import raw_connect, snapshot

MiB = 1 << 20

# Runs casectl in this process, then reports the process's own peak RSS (KiB on Linux) on stderr's
# last line: a subprocess measures one command alone, whatever the test run did before.
MEASURED = """
import resource, sys
from casectl.cli.app import main
sys.argv = ["casectl", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    code = e.code
else:
    code = 0
print("maxrss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def measured(
    *args: str, env: dict[str, str] | None = None, stdout=subprocess.PIPE
) -> tuple[subprocess.CompletedProcess, int]:
    """Run a casectl command in a fresh interpreter: its result and its peak RSS in bytes."""
    r = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    lines = r.stderr.decode().strip().splitlines()
    assert lines and lines[-1].startswith("maxrss "), r.stderr.decode()
    return r, int(lines[-1].split()[1]) * 1024


@pytest.fixture
def case(cli, db):
    return cli("create", "-w", "kyb", "--block", "document:passport", "--block", "document:id").stdout.strip()


def generated(path, size: int) -> str:
    """A sparse file of `size` bytes with distinct bytes at both ends; returns its sha256."""
    with open(path, "wb") as f:
        f.write(os.urandom(MiB))
        f.truncate(size - MiB)
        f.seek(0, os.SEEK_END)
        f.write(os.urandom(MiB))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def content_last_in(db) -> bool:
    conn = raw_connect(db)
    try:
        return migrations.content_is_last(conn)
    finally:
        conn.close()


@pytest.mark.sqlite_only(reason="SQLite's zeroblob and the column order of its documents table")
def test_new_databases_keep_a_documents_content_last(db):
    # SQLite writes a zeroblob(n) without building it in memory only when no column after it has data.
    assert content_last_in(db)


@pytest.mark.sqlite_only(reason="a SQLite migration rebuilding a table: rowids, PRAGMAs, sqlite_master")
def test_rebuilding_documents_keeps_every_row_and_reference(cli, case, tmp_path, db):
    stored = {}
    for i, block in enumerate(("passport", "id")):
        p = tmp_path / f"{block}.pdf"
        p.write_bytes(os.urandom(100_000 + i))
        stored[block] = cli.json("attach", case, block, str(p), "--json")["sha256"]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")  # as every casectl connection has it
    try:
        before = conn.execute("SELECT rowid, sha256, size, media_type, created_at, content FROM documents").fetchall()
        conn.execute("BEGIN IMMEDIATE")
        migrations.rebuild_content_last(conn)
        conn.execute("COMMIT")
        assert migrations.content_is_last(conn)
        after = conn.execute("SELECT rowid, sha256, size, media_type, created_at, content FROM documents").fetchall()
        assert after == before
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert "documents_content_last" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert (
            'REFERENCES "documents"'
            in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'attachments'").fetchone()[0]
        )
        conn.execute("BEGIN IMMEDIATE")
        migrations.rebuild_content_last(conn)  # a second run changes nothing
        conn.execute("COMMIT")
        assert list(document_store.corrupt_documents(conn)) == []
    finally:
        conn.close()
    back = tmp_path / "back.pdf"
    cli("doc", case, "passport", "-o", str(back))
    assert hashlib.sha256(back.read_bytes()).hexdigest() == stored["passport"]


def test_a_large_attachment_keeps_memory_flat_both_ways(case, tmp_path, db, backend):
    if backend == "sqlite":
        assert content_last_in(db)  # migration 0010
    size = 60 * MiB
    big = tmp_path / "big.bin"
    want = generated(big, size)
    small = tmp_path / "small.bin"
    small.write_bytes(b"a small document")
    env = {"CASECTL_MAX_DOCUMENT_SIZE": "200M"}

    r, baseline = measured("attach", case, "id", str(small), env=env)
    assert r.returncode == 0, r.stderr
    r, attaching = measured("attach", case, "passport", str(big), env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "back.bin"
    r, writing = measured("doc", case, "passport", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "stdout.bin", "wb") as sink:
        r, streaming = measured("doc", case, "passport", "-o", "-", stdout=sink)
    assert r.returncode == 0, r.stderr

    print(
        f"\nfile {size / MiB:.0f} MiB; peak RSS: baseline {baseline / MiB:.1f} MiB, attach {attaching / MiB:.1f} MiB, "
        f"doc -o FILE {writing / MiB:.1f} MiB, doc -o - {streaming / MiB:.1f} MiB"
    )
    for peak in (attaching, writing, streaming):
        assert peak - baseline < size / 4, (peak, baseline)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want
    assert out.stat().st_size == size
    assert (tmp_path / "stdout.bin").stat().st_size == size
    conn = raw_connect(db)
    try:
        assert list(document_store.corrupt_documents(conn)) == []
        assert tuple(conn.execute("SELECT size FROM documents WHERE sha256 = ?", (want,)).fetchone()) == (size,)
    finally:
        conn.close()


def test_stdin_is_spooled_and_stored_like_a_file(cli, case, tmp_path, run):
    content = os.urandom(3 * MiB + 17)
    out = cli.json("attach", case, "passport", "-", "--filename", "scan.pdf", "--json", input=content)
    assert out["sha256"] == hashlib.sha256(content).hexdigest() and out["size"] == len(content)
    assert (out["filename"], out["media_type"]) == ("scan.pdf", "application/pdf")
    r = run("doc", case, "passport", "-o", "-", input=b"")
    assert r.returncode == 0 and r.stdout == content
    # Without --filename the name says where it came from.
    assert cli.json("attach", case, "id", "-", "--json", input=b"x")["filename"] == "stdin"


def test_a_pipe_is_read_once_and_stored(cli, case, tmp_path, run):
    content = os.urandom(2 * MiB)
    src = tmp_path / "src.bin"
    src.write_bytes(content)
    # /dev/stdin is a pipe here: it cannot be read twice, so it is spooled.
    with open(src, "rb") as f:
        cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
        r = subprocess.run(
            [sys.executable, "-c", MEASURED, "attach", case, "passport", "/dev/stdin"],
            stdin=cat.stdout,
            capture_output=True,
            timeout=60,
        )
        assert cat.stdout is not None
        cat.stdout.close()
        cat.wait()
    assert r.returncode == 0, r.stderr
    assert run("doc", case, "passport", "-o", "-", input=b"").stdout == content


@pytest.mark.parametrize("how", ["file", "stdin", "config"])
def test_above_the_limit_is_refused_and_nothing_is_written(cli, case, tmp_path, db, how, monkeypatch):
    import tempfile

    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))  # where stdin is spooled
    content = os.urandom(2 * MiB + 1)
    big = tmp_path / "big.pdf"
    big.write_bytes(content)
    before = snapshot(db)
    if how == "config":
        conf = tmp_path / "xdg-config" / "casectl"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "config.toml").write_text('[documents]\nmax_size = "2M"\n')
        r = cli("attach", case, "passport", str(big), expect=6)
    elif how == "file":
        r = cli("attach", case, "passport", str(big), env={"CASECTL_MAX_DOCUMENT_SIZE": "2M"}, expect=6)
    else:
        r = cli("attach", case, "passport", "-", input=content, env={"CASECTL_MAX_DOCUMENT_SIZE": "2M"}, expect=6)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "over the document size limit of 2 MiB (2097152 bytes)" in lines[0] or (
        "more than the document size limit of 2 MiB (2097152 bytes)" in lines[0]
    )
    assert "nothing was stored" in lines[0] and "CASECTL_MAX_DOCUMENT_SIZE" in lines[0]
    if how != "stdin":
        assert f"{big}: 2.0 MiB (2097153 bytes)" in lines[0]
    r = cli("block", case, "passport", "received", str(big), env={"CASECTL_MAX_DOCUMENT_SIZE": "2M"}, expect=6)
    assert "over the document size limit" in r.stderr
    assert snapshot(db) == before
    assert list(spool_dir.iterdir()) == []  # the copy of stdin went with the refusal
    # The variable wins over the config file, and a limit as large as the file lets it in.
    assert cli.json("attach", case, "passport", str(big), "--json", env={"CASECTL_MAX_DOCUMENT_SIZE": "2097153"})[
        "size"
    ] == len(content)


def test_the_default_limit_is_100_mib(cli, case, tmp_path, db):
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as f:
        f.truncate(100 * MiB + 1)  # sparse: refused from its size, before a byte is read
    before = snapshot(db)
    r = cli("attach", case, "passport", str(huge), expect=6)
    assert "100.0 MiB (104857601 bytes) is over the document size limit of 100 MiB (104857600 bytes)" in r.stderr
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", "'abc' is not a size"),
        ("0", "must be greater than 0"),
        ("-5M", "is not a size"),
        ("1.5X", "is not a size"),
    ],
)
def test_a_bad_limit_is_one_line(cli, case, tmp_path, value, message):
    p = tmp_path / "a.pdf"
    p.write_bytes(b"x")
    r = cli("attach", case, "passport", str(p), env={"CASECTL_MAX_DOCUMENT_SIZE": value}, expect=6)
    assert r.stderr.strip() == f"casectl: error: CASECTL_MAX_DOCUMENT_SIZE: {message}" or message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_sizes_accept_suffixes():
    from casectl.services.content import parse_size

    assert parse_size("5000000", "x") == 5_000_000
    assert parse_size("50M", "x") == 50 * MiB
    assert parse_size("1G", "x") == 1 << 30
    assert parse_size("1.5GiB", "x") == 3 << 29
    assert parse_size("64k", "x") == 64 << 10
    assert parse_size("2 MB", "x") == 2 * MiB
    assert parse_size(1234, "x") == 1234


def test_an_unreadable_file_is_one_line_and_writes_nothing(cli, case, tmp_path, db):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    p = tmp_path / "secret.pdf"
    p.write_bytes(b"x")
    p.chmod(0)
    before = snapshot(db)
    r = cli("attach", case, "passport", str(p), expect=6)
    assert "not readable (permission denied)" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert snapshot(db) == before


def test_a_file_that_changes_while_it_is_stored_rolls_back(case, tmp_path, db, monkeypatch):
    """The bytes are read twice (hashed, then written); if they differ, nothing is stored (exit 7)."""
    from casectl.errors import EnvironmentProblem
    from casectl.services import content
    from casectl.store import connect

    p = tmp_path / "moving.pdf"
    p.write_bytes(b"A" * (3 * MiB))
    real_measure = content._measure

    def measure_then_change(f, label, limit, hint):
        found = real_measure(f, label, limit, hint)
        with open(p, "r+b") as w:  # the same inode: an in-place edit between the two reads
            w.seek(MiB)
            w.write(b"B")
        return found

    monkeypatch.setattr(content, "_measure", measure_then_change)
    before = snapshot(db)
    conn = connect(db)
    try:
        from datetime import UTC, datetime

        with pytest.raises(EnvironmentProblem, match="changed while it was being stored; nothing was stored"):
            content.attach(conn, case, "passport", p, actor="t", now=datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        conn.close()
    assert snapshot(db) == before


def test_a_damaged_stored_document_is_named_and_never_written_out(cli, case, tmp_path, db, backend):
    good = tmp_path / "good.pdf"
    good.write_bytes(b"%PDF good document " * 1000)
    other = tmp_path / "other.pdf"
    other.write_bytes(os.urandom(3 * MiB))
    sha_good = cli.json("attach", case, "id", str(good), "--json")["sha256"]
    sha_bad = cli.json("attach", case, "passport", str(other), "--json")["sha256"]

    conn = raw_connect(db)
    try:
        assert list(document_store.corrupt_documents(conn)) == []
        # Change one byte in the middle of the blob, leaving its length and key alone.
        stored = bytearray(conn.execute("SELECT content FROM documents WHERE sha256 = ?", (sha_bad,)).fetchone()[0])
        stored[2_000_000] ^= 0xFF
        with conn:
            conn.execute("UPDATE documents SET content = ? WHERE sha256 = ?", (bytes(stored), sha_bad))
        assert tuple(conn.execute("SELECT length(content) FROM documents WHERE sha256 = ?", (sha_bad,)).fetchone()) == (
            3 * MiB,
        )
        found = list(document_store.corrupt_documents(conn))
        assert [sha for sha, _ in found] == [sha_bad]
        assert "does not match its sha256" in found[0][1]

        # Text in place of bytes, and a recorded size that lies, are named too.
        with conn:
            conn.execute("UPDATE documents SET size = size + 1 WHERE sha256 = ?", (sha_good,))
        found = dict(document_store.corrupt_documents(conn))
        assert set(found) == {sha_good, sha_bad} and "recorded size" in found[sha_good]
        if backend == "sqlite":  # PostgreSQL's content is bytea: it cannot hold text
            with conn:
                conn.execute("UPDATE documents SET content = 'text' WHERE sha256 = ?", (sha_good,))
            assert "stored as text" in dict(document_store.corrupt_documents(conn))[sha_good]
    finally:
        conn.close()

    target = tmp_path / "out.pdf"
    r = cli("doc", case, "passport", "-o", str(target), expect=7)
    assert f"the stored document {sha_bad[:12]} is missing or damaged" in r.stderr
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".casectl-tmp-")]
    r = cli("doc", case, "passport", "-o", "-", expect=7)
    assert r.stdout == ""  # checked before a byte went to stdout
