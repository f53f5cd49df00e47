"""Every file casectl writes (export, report, doc, db backup, export --package, import --rejects):
atomic under SIGKILL, never through a symlink, never over a device, mode 0600, and the
temporary files a killed run left are removed by the next write into that directory.

Devices are private nodes made with mknod in the test's directory (root only), so that a
regression cannot replace the machine's own /dev/full or /dev/null."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import stat
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from conftest import casectl_bin

TMP = ".casectl-tmp-"


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TMP))


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("casectl: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def case(cli, db, tmp_path) -> str:
    cid = cli("create", "--workflow", "kyb", "--ref", "K1", "--subject-name", "Ann Lee").stdout.strip()
    cli("block", cid, "add", "document", "passport")
    doc = tmp_path / "scan.pdf"
    doc.write_bytes(b"%PDF-1.4 scan of a passport\n" * 100)
    cli("attach", cid, "passport", str(doc))
    return cid


def writers(case: str, target: Path, tmp_path: Path) -> dict[str, list[str]]:
    """Each command that writes a file named on the command line, aimed at `target`."""
    bad = tmp_path / "in.csv"
    bad.write_text("ref,workflow\nN1,simple\nN2,nope\n", encoding="utf-8")
    return {
        "export": ["export", "-o", str(target)],
        "report": ["report", "-o", str(target)],
        "doc": ["doc", case, "passport", "-o", str(target)],
        "backup": ["db", "backup", str(target), "--force"],
        "package": ["export", case, "--package", str(target)],
        "rejects": ["import", str(bad), "--skip-invalid", "--rejects", str(target)],
    }


WRITERS = [
    "export",
    "report",
    "doc",
    pytest.param(
        "backup",
        marks=pytest.mark.sqlite_only(
            reason="db backup writes a copy of the SQLite file; a PostgreSQL database is backed up with pg_dump"
        ),
    ),
    "package",
    "rejects",
]


def device(tmp_path: Path, name: str, major: int, minor: int) -> Path:
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("making a private device node needs root (mknod); the machine's own must not be risked")
    return path


# --- links -----------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_a_symlink_at_the_final_name_is_refused(cli, case, tmp_path, writer):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.file"
    link.symlink_to(victim)
    r = cli(*writers(case, link, tmp_path)[writer], expect=6)
    assert "symbolic link" in one_error_line(r.stderr)
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert victim.read_text() == "precious\n"
    assert temps(tmp_path) == []


# --- devices ---------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_device_is_an_error_and_stays_a_device(run, case, tmp_path, writer):
    full = device(tmp_path, "full", 1, 7)
    r = run(*writers(case, full, tmp_path)[writer])
    assert r.returncode == 7, r.stderr
    assert "full" in one_error_line(r.stderr)
    assert stat.S_ISCHR(full.lstat().st_mode)
    assert temps(tmp_path) == []


@pytest.mark.parametrize("writer", WRITERS)
def test_a_null_device_is_written_as_a_stream_and_stays_a_device(run, case, tmp_path, writer):
    null = device(tmp_path, "null", 1, 3)
    r = run(*writers(case, null, tmp_path)[writer])
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert temps(tmp_path) == []


@pytest.mark.parametrize("name", ["/dev/fd/1", "/proc/self/fd/1"])
def test_the_commands_own_stdout_is_written_through(case, tmp_path, name):
    # /dev/stdout itself is never aimed at here: a regression would replace the machine's link.
    out = tmp_path / "redirected.csv"
    with out.open("wb") as f:
        r = subprocess.run([casectl_bin(), "export", "-o", name], stdout=f, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0][0] == "ref" and rows[1][0] == "K1"

    r = subprocess.run([casectl_bin(), "export", case, "--package", name], capture_output=True)
    assert r.returncode == 0, r.stderr
    (tmp_path / "p.zip").write_bytes(r.stdout)
    with zipfile.ZipFile(tmp_path / "p.zip") as z:
        assert z.testzip() is None and "manifest.json" in z.namelist()
    assert b"manifest.json" in r.stderr  # the summary went to stderr, out of the zip's way


def test_dev_stdout_and_stderr_name_the_commands_streams():
    from casectl.files import check_target

    assert check_target("/dev/stdout").fd == 1 and check_target("/dev/stderr").fd == 2
    assert check_target("/dev/fd/7").fd == 7 and check_target("/proc/self/fd/3").fd == 3


# --- modes -----------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_outputs_are_private_even_over_a_readable_file(case, tmp_path, writer):
    target = tmp_path / "out.file"
    target.write_text("old")
    target.chmod(0o644)
    args = [casectl_bin(), *writers(case, target, tmp_path)[writer]]
    r = subprocess.run(args, capture_output=True, text=True, preexec_fn=lambda: os.umask(0))
    assert r.returncode == 0, r.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_bytes() != b"old"
    assert temps(tmp_path) == []


def test_rejects_are_named_as_given(cli, db, tmp_path):
    bad = tmp_path / "in.csv"
    bad.write_text("ref,workflow\nN1,simple\nN2,nope\n", encoding="utf-8")
    r = cli("import", bad, "--skip-invalid", "--rejects", tmp_path / "rejects.csv")
    assert f"written to {tmp_path / 'rejects.csv'}" in r.stderr
    rows = list(csv.reader((tmp_path / "rejects.csv").open(encoding="utf-8")))
    assert rows[0][-1] == "error" and rows[1][0] == "N2"
    assert temps(tmp_path) == []


# --- kills -----------------------------------------------------------------------------


def kill_mid_write(args: list[str], folder: Path, timeout: float = 30) -> bool:
    """Start casectl, SIGKILL it as soon as a new file shows up in `folder` (its temporary, or the
    output itself); True if it was killed before it finished."""
    before = set(os.listdir(folder))
    proc = subprocess.Popen([casectl_bin(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if set(os.listdir(folder)) - before:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        proc.wait(timeout=timeout)
    return proc.returncode == -signal.SIGKILL


def test_a_killed_export_leaves_the_old_file_and_the_next_run_cleans_up(cli, db, tmp_path):
    src = tmp_path / "many.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ref", "subject_name", "data"])
        for i in range(3000):
            w.writerow([f"R{i}", f"Subject {i}", '{"memo": "' + "m" * 3000 + '"}'])
    cli("import", src, "--workflow", "simple")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "cases.csv"
    target.write_text("the previous export\n")

    assert kill_mid_write(["export", "-o", str(target)], out_dir)
    assert target.read_text() == "the previous export\n"  # never half of the new one
    left = temps(out_dir)
    assert len(left) == 1  # what the kill left behind...

    cli("export", "-o", target)
    assert temps(out_dir) == []  # ...is gone after the next write into the directory
    assert sum(1 for _ in csv.reader(target.open(encoding="utf-8"))) == 3001


def test_killed_doc_outputs_never_leave_half_a_document(cli, db, tmp_path):
    cid = cli("create", "--workflow", "kyb").stdout.strip()
    cli("block", cid, "add", "document", "passport")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20) * 40)
    cli("attach", cid, "passport", big)
    want = hashlib.sha256(big.read_bytes()).hexdigest()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "passport.bin"

    caught = 0
    for _ in range(4):
        caught += kill_mid_write(["doc", cid, "passport", "-o", str(target)], out_dir)
        # Whenever the kill landed, the final name holds nothing or the whole document.
        assert not target.exists() or hashlib.sha256(target.read_bytes()).hexdigest() == want
    assert caught >= 1

    cli("doc", cid, "passport", "-o", target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == want
    assert temps(out_dir) == []


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("writer", WRITERS)
def test_every_writer_removes_what_killed_runs_left_and_nothing_else(cli, case, tmp_path, writer):
    from casectl.files import host_tag

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    host = host_tag()
    stale = out_dir / f"{TMP}{dead_pid()}-{host}-abc123-cases.db"
    stale.write_bytes(b"x" * 1000)
    journal = out_dir / f"{stale.name}-journal"
    journal.write_bytes(b"j")
    live = out_dir / f"{TMP}{os.getpid()}-{host}-def456-report.pdf"  # a run still writing
    live.write_bytes(b"y")
    elsewhere = out_dir / f"{TMP}{dead_pid()}-00000000-ghi789-x.csv"  # another machine's, on a shared disk
    elsewhere.write_bytes(b"z")
    mine = out_dir / "notes.txt"
    mine.write_text("not casectl's")

    cli(*writers(case, out_dir / "out.file", tmp_path)[writer])
    assert not stale.exists() and not journal.exists()
    assert live.exists() and elsewhere.exists() and mine.exists()


@pytest.mark.sqlite_only(reason="the -o names the SQLite database file itself (or its write-ahead log)")
@pytest.mark.parametrize("suffix", ["", "-wal"])
@pytest.mark.parametrize(
    "args",
    [
        ("export", "-o"),
        ("report", "-o"),
        ("doc", "C-1", "passport", "-o"),
        ("export", "C-1", "--package"),
        ("db", "anchor", "-o"),
    ],
    ids=lambda a: " ".join(a),
)
def test_no_output_replaces_the_database(cli, db, tmp_path, args, suffix):
    """An -o that names the database (or its write-ahead log) is refused; it used to replace it, exit 0."""
    cli("create", "--workflow", "kyb")
    cli("block", "C-1", "add", "document", "passport")
    doc = tmp_path / "p.pdf"
    doc.write_bytes(b"%PDF-1.4 scan")
    cli("attach", "C-1", "passport", doc)
    before = db.read_bytes()
    r = cli(*args, f"{db}{suffix}", expect=6)
    assert "writing there would destroy it" in r.stderr
    assert cli("db", "check").exit_code == 0 and db.read_bytes() == before
