#!/usr/bin/env python3
"""Whole-process start-up cost of casectl, next to its floor and a peer.

Prints the median wall time of N runs of:
  python -c "import sqlite3"            (the floor: an interpreter that can open SQLite)
  casectl --help
  casectl show ID
  casectl list --limit 50
  sqlite-utils rows DB cases --limit 50 (a peer people use for the same look-up)
and the ratio of each casectl figure to the floor and to the peer.
Target: every casectl figure under 6x the floor and below the peer.

Usage: scripts/bench_startup.py [--runs 21] [--cases 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_ms(cmd: list[str], runs: int, env: dict) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def populate(db: Path, n: int) -> None:
    from casectl.services import lifecycle
    from casectl.services.records import NewCase
    from casectl.store import connect, write
    from casectl.timeutil import now

    conn = connect(db, create=True)
    t = now()
    with write(conn):
        for i in range(n):
            nc = NewCase(
                workflow=("kyb", "simple", "screening")[i % 3],
                ref=f"REF-{i}",
                subject_name=f"Subject {i}",
                subject_email=f"s{i}@example.com",
                country="GB",
                data={"n": i},
            )
            lifecycle.insert_case(conn, nc, actor="bench", now=t)
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--cases", type=int, default=2000)
    args = ap.parse_args()
    import compileall

    import casectl

    # What an installed casectl has: bytecode (an editable install with
    # PYTHONDONTWRITEBYTECODE set would recompile every module on every call).
    compileall.compile_dir(Path(casectl.__file__).parent, quiet=1)
    bindir = Path(sys.executable).parent
    casectl = shutil.which("casectl", path=str(bindir)) or "casectl"
    peer = shutil.which("sqlite-utils", path=str(bindir)) or shutil.which("sqlite-utils")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        populate(db, args.cases)
        env = {**os.environ, "CASECTL_DB": str(db), "CASECTL_CHAIN_KEY_FILE": f"{db}.key", "CASECTL_NO_DELIVER": "1"}
        rows = [
            ("python -c 'import sqlite3' (floor)", [sys.executable, "-c", "import sqlite3"]),
            ("casectl --help", [casectl, "--help"]),
            ("casectl show C-1", [casectl, "show", "C-1"]),
            ("casectl list --limit 50", [casectl, "list", "--limit", "50"]),
        ]
        if peer:
            rows.append(
                ("sqlite-utils rows DB cases --limit 50 (peer)", [peer, "rows", str(db), "cases", "--limit", "50"])
            )
        for _, cmd in rows:  # warm the page cache and .pyc files
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        results = {label: median_ms(cmd, args.runs, env) for label, cmd in rows}
    floor = results[rows[0][0]]
    peer_ms = results.get(rows[-1][0]) if peer else None
    print(f"start-up, median of {args.runs} runs, {args.cases} cases in the database")
    print(f"{'command':<48} {'ms':>8} {'x floor':>8} {'x peer':>8}")
    ok = True
    for label, ms in results.items():
        vs_peer = f"{ms / peer_ms:8.2f}" if peer_ms else "       -"
        print(f"{label:<48} {ms:8.1f} {ms / floor:8.2f} {vs_peer}")
        if label.startswith("casectl"):
            ok &= ms < 6 * floor and (peer_ms is None or ms < peer_ms)
    print(f"target (every casectl figure < 6x floor and below the peer): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
