#!/usr/bin/env python3
"""Benchmark `casectl import` against its physical baseline and sqlite-utils.

From one run, on the same generated file (default 100,000 rows):

- casectl import (a real `casectl import` process, validation, subjects,
  hash-chained events, the kernel's creation followers, one transaction);
- raw sqlite3: the same rows read with csv.reader and executemany'd into the
  same schema (a fresh `casectl init` database: all indexes and triggers) as
  subjects and cases, in one transaction, nothing else (the issue's baseline);
  and, for information, the same rows 500 per INSERT statement, as casectl
  inserts them;
- `sqlite-utils insert --csv` of the same file into a plain table;
- the ratios, the share of the import spent in the creation followers (an
  in-process run that times them), and the peak RSS of a `casectl import`
  of a 1,000,000-row file (measured through a small wrapper process: a
  child forked from this large process would count its pages).

The machine may be shared: numbers are noisy, run it twice.

Usage: scripts/bench_import.py [N] [--rss-rows M] [--no-rss] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
COUNTRIES = ["GB", "HK", "DE", "FR", "US", "SG", "NL", "IE", "ES", "IT"]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Margaret", "Frances", "John"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Thompson", "Hamilton", "Allen", "Backus"]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if not found:
        sys.exit(f"bench_import: {name} is not installed (pip install -e '.[test]')")
    return found


def generate(path: Path, n: int, seed: int = 4) -> None:
    """n rows; one subject in ten has two cases (reused by email)."""
    rnd = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            [
                "ref",
                "subject_name",
                "subject_email",
                "subject_dob",
                "country",
                "priority",
                "tags",
                "company.name",
                "company.reg_no",
                "amount",
            ]
        )
        for i in range(n):
            person = i - 1 if i % 10 == 9 else i
            name = f"{FIRST[person % 10]} {LAST[(person // 10) % 10]}"
            w.writerow(
                [
                    f"EXT-{i:08d}",
                    name,
                    f"user{person}@example.com",
                    f"{1950 + person % 50}-{1 + person % 12:02d}-{1 + person % 28:02d}",
                    COUNTRIES[person % len(COUNTRIES)],
                    rnd.choice(["low", "normal", "normal", "high"]),
                    rnd.choice(["", "vip", "batch,vip", "batch"]),
                    f"Company {person}",
                    f"{rnd.randrange(10**8):08d}",
                    f"{rnd.randrange(10**6) / 100:.2f}",
                ]
            )


def casectl_env(db: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CASECTL_DB": str(db),
        "CASECTL_CHAIN_KEY_FILE": f"{db}.key",  # beside the throw-away database, not in ~/.config
        "CASECTL_ACTOR": "bench",
        "CASECTL_NO_DELIVER": "1",
    }


def init_db(db: Path) -> None:
    subprocess.run([tool("casectl"), "init"], env=casectl_env(db), check=True, capture_output=True)


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall time, peak RSS (bytes) and stderr of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix in the others).
    err = b""
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench_import: {' '.join(cmd)} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return elapsed, usage.ru_maxrss * 1024, err.decode(errors="replace")


def bench_casectl(csv_path: Path, work: Path) -> float:
    db = work / "casectl.db"
    init_db(db)
    elapsed, _, err = run_child([tool("casectl"), "import", str(csv_path), "--workflow", "kyb"], casectl_env(db))
    print(f"  casectl: {err.strip()}")
    return elapsed


SUBJECT_INSERT = (
    "INSERT INTO subjects (id, name, email, email_key, dob, country, entity_type, data, created_at, updated_at) VALUES "
)
CASE_INSERT = (
    "INSERT INTO cases (id, ref, workflow, workflow_version, status, final, subject_id, data, "
    "registry_data, priority, created_at, updated_at, origin) VALUES "
)


def _raw_db(work: Path, name: str) -> sqlite3.Connection:
    """A fresh database with casectl's schema, connected as the raw baselines use it."""
    db = work / name
    init_db(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "INSERT OR IGNORE INTO workflows (name, version, definition, builtin, created_at) "
        "VALUES ('kyb', 1, '{}', 1, '2026-01-01T00:00:00Z')"
    )
    return conn


def _raw_rows(csv_path: Path) -> tuple[list[tuple], list[tuple]]:
    """The generated file's rows as subject and case tuples (subjects reused by email)."""
    at = "2026-01-01T00:00:00Z"
    subjects, cases, emails = [], [], {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for i, (ref, name, email, dob, country, priority, _tags, cname, reg, amount) in enumerate(reader, 1):
            key = email.lower()
            sid = emails.get(key)
            if sid is None:
                sid = emails[key] = len(subjects) + 1
                subjects.append((sid, name, email, key, dob, country, "person", "{}", at, at))
            data = json.dumps({"amount": amount, "company": {"name": cname, "reg_no": reg}})
            cases.append((i, ref, "kyb", 1, "collection_flow", 0, sid, data, "{}", priority, at, at, "import"))
    return subjects, cases


def bench_raw(csv_path: Path, work: Path) -> tuple[float, float]:
    """(seconds including reading the CSV, seconds of executemany + commit alone)."""
    conn = _raw_db(work, "raw.db")
    t0 = time.perf_counter()
    subjects, cases = _raw_rows(csv_path)
    t1 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(SUBJECT_INSERT + "(?,?,?,?,?,?,?,?,?,?)", subjects)
    conn.executemany(CASE_INSERT + "(?,?,?,?,?,?,?,?,?,?,?,?,?)", cases)
    conn.execute("COMMIT")
    t2 = time.perf_counter()
    conn.close()
    return t2 - t0, t2 - t1


def bench_sqlite_utils(csv_path: Path, work: Path) -> float:
    db = work / "plain.db"
    elapsed, _, _ = run_child([tool("sqlite-utils"), "insert", str(db), "cases", str(csv_path), "--csv"])
    return elapsed


def bench_raw_multirow(csv_path: Path, work: Path, per_statement: int = 500) -> float:
    """Seconds of the same inserts as bench_raw, `per_statement` rows per INSERT (as casectl does):
    one statement journal per statement instead of one per row. For information: the issue's
    baseline is executemany."""
    conn = _raw_db(work, "raw_multi.db")
    t0 = time.perf_counter()
    subjects, cases = _raw_rows(csv_path)

    def insert(head: str, rows: list[tuple]) -> None:
        one = "(" + ",".join("?" * len(rows[0])) + ")"
        for k in range(0, len(rows), per_statement):
            chunk = rows[k : k + per_statement]
            conn.execute(head + ",".join([one] * len(chunk)), [v for r in chunk for v in r])

    conn.execute("BEGIN IMMEDIATE")
    insert(SUBJECT_INSERT, subjects)
    insert(CASE_INSERT, cases)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def hooks_share(csv_path: Path, work: Path) -> tuple[float, float]:
    """An in-process import that times the creation followers: (total s, followers s).

    The kernel's batch creation runs them case by case after writing the batch
    (lifecycle.created_followers: initial blocks and activities, effects; the SLA
    clock is computed once per workflow and status and written with the rows)."""
    from casectl import store
    from casectl.services import importer, lifecycle
    from casectl.timeutil import now

    db = work / "hooks.db"
    init_db(db)
    conn = store.connect(db, key_source=store.chain.KeySource.from_environ(casectl_env(db)))
    spent = [0.0]
    real = lifecycle.created_followers

    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            spent[0] += time.perf_counter() - t

    lifecycle.created_followers = timed
    try:
        t0 = time.perf_counter()
        importer.import_csv(conn, str(csv_path), workflow="kyb", actor="bench", now=now())
        total = time.perf_counter() - t0
    finally:
        lifecycle.created_followers = real
        conn.close()
    return total, spent[0]


# Runs the command and prints its own children's peak RSS (KiB): a child forked straight
# from this benchmark (which has imported in-process and is large) would count the
# parent's pages in its peak RSS.
_RSS_WRAPPER = (
    "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
    "stderr=subprocess.PIPE); sys.stderr.buffer.write(p.stderr); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)"
)


def bench_rss(rows: int, work: Path) -> tuple[float, int]:
    path = work / "big.csv"
    generate(path, rows, seed=7)
    db = work / "big.db"
    init_db(db)
    cmd = [sys.executable, "-c", _RSS_WRAPPER, tool("casectl"), "import", str(path), "--workflow", "kyb"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=casectl_env(db), capture_output=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(
            f"bench_import: the {rows:,}-row import failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )
    return elapsed, int(proc.stdout) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=100_000, help="rows (default 100,000)")
    ap.add_argument("--rss-rows", type=int, default=1_000_000, help="rows of the memory run (default 1,000,000)")
    ap.add_argument("--no-rss", action="store_true", help="skip the memory run")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="casectl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        csv_path = work / "cases.csv"
        generate(csv_path, args.n)
        n = args.n
        print(f"{n:,} rows, {csv_path.stat().st_size / 1e6:.1f} MB CSV; CPU may be shared: figures are noisy")
        t_casectl = bench_casectl(csv_path, work)
        t_raw, t_raw_insert = bench_raw(csv_path, work)
        t_su = bench_sqlite_utils(csv_path, work)
        t_multi = bench_raw_multirow(csv_path, work)
        total, in_hooks = hooks_share(csv_path, work)
        r_casectl, r_raw, r_raw_insert, r_su = n / t_casectl, n / t_raw, n / t_raw_insert, n / t_su
        print(f"casectl import                       {r_casectl:>10,.0f} rows/s  ({t_casectl:.2f} s, whole process)")
        print(f"raw sqlite3 executemany (+csv read)  {r_raw:>10,.0f} rows/s  ({t_raw:.2f} s)")
        print(f"raw sqlite3 executemany (insert only){r_raw_insert:>10,.0f} rows/s  ({t_raw_insert:.2f} s)")
        print(
            f"raw sqlite3, 500 rows per INSERT     {n / t_multi:>10,.0f} rows/s  ({t_multi:.2f} s incl. csv read; "
            "for information)"
        )
        print(f"sqlite-utils insert --csv            {r_su:>10,.0f} rows/s  ({t_su:.2f} s, whole process)")
        print(f"casectl / raw (+csv read)            {r_casectl / r_raw:>10.0%}   (target >= 40%)")
        print(f"casectl / raw (insert only)          {r_casectl / r_raw_insert:>10.0%}")
        print(f"casectl / sqlite-utils               {r_casectl / r_su:>10.2f}x  (target > 1)")
        print(f"casectl / raw, 500 rows per INSERT   {r_casectl / (n / t_multi):>10.0%}")
        print(
            f"creation followers                   {in_hooks:>10.2f} s of {total:.2f} s in-process "
            f"({in_hooks / total:.0%})"
        )
        if not args.no_rss:
            t_big, rss = bench_rss(args.rss_rows, work)
            print(
                f"peak RSS, {args.rss_rows:,}-row import       {rss / 2**20:>10.1f} MB  "
                f"({args.rss_rows / t_big:,.0f} rows/s; target < 150 MB)"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
