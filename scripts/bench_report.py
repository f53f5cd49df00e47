#!/usr/bin/env python3
"""Time and peak memory of `casectl report` (the overview) on 10,000 and 100,000
cases, next to the naive baseline (one platypus Table of all rows), in one run.

Each report runs in a child process; its peak memory is the child's maximum
resident set size (wait4's ru_maxrss). The CPU may be shared: figures are noisy.

Usage: scripts/bench_report.py [--sizes 10000,100000] [--naive-sizes 10000,20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

NAMES = [
    "Ada Lovelace",
    "Zoë Ærøskøbing",
    "王小明",
    "محمد عبد الله",
    "Дмитрий Иванов",
    "José Ñúñez",
    "Grace Hopper",
    "李娜",
    "فاطمة الزهراء",
    "Ольга Петрова",
]
PLAN = [
    ("kyb", "manual_review"),
    ("kyb", "pending_process"),
    ("simple", "open"),
    ("simple", "approved"),
    ("screening", "in_progress"),
    ("kyb", "rejected"),
]

NAIVE = r"""
import sys
from reportlab.lib.pagesizes import A4
from reportlab.platypus import SimpleDocTemplate, Table
from casectl.filters import CaseFilter
from casectl.services import listing
from casectl.store import connect
conn = connect(sys.argv[1])
rows = [["Case", "Subject", "Workflow", "Status", "Assignee", "Created"]]
for c in listing.select(conn, CaseFilter()):
    rows.append([f"C-{c['id']}", (c["subject_name"] or "")[:30], c["workflow"], c["status"], c["assignee"] or "",
                 c["created_at"][:10]])
SimpleDocTemplate(sys.argv[2], pagesize=A4).build([Table(rows, repeatRows=1)])
"""


def make_db(path: Path, n: int) -> None:
    """n cases with varied workflows, statuses, assignees and names in several scripts."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from casectl.services import workflows as workflow_service
    from casectl.store import cases as case_store
    from casectl.store import connect, write
    from casectl.store import subjects as subject_store
    from casectl.timeutil import iso

    conn = connect(path, create=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    now = start + timedelta(days=400)
    with write(conn):
        wfs = {name: workflow_service.get(conn, name) for name in ("kyb", "simple", "screening")}
        for wf in wfs.values():
            workflow_service.ensure_recorded(conn, wf, now=now, actor="bench")
        for i in range(n):
            wf_name, status = PLAN[i % len(PLAN)]
            wf = wfs[wf_name]
            at = iso(start + timedelta(minutes=5 * i * 100_000 // max(n, 1)))
            sid = subject_store.insert(
                conn, {"name": f"{NAMES[i % len(NAMES)]} {i}", "email": f"p{i}@example.com"}, at=at
            )
            case_store.insert(
                conn,
                {
                    "workflow": wf.name,
                    "workflow_version": wf.version,
                    "status": status,
                    "final": int(wf.is_final(status)),
                    "subject_id": sid,
                    "data": {},
                    "registry_data": {},
                    "assignee": ["alice", "bob", None][i % 3],
                    "priority": "normal",
                    "created_at": at,
                    "updated_at": at,
                    "origin": "import",
                    "created_by": "bench",
                    "last_editor": "bench",
                    "due_at": iso(start + timedelta(days=30 + i % 400)) if i % 7 == 0 else None,
                },
            )
    conn.close()


def measure(cmd: list[str], env: dict, timeout: float) -> tuple[float | None, float | None]:
    """(seconds, peak RSS in MB) of a child process; (None, None) when it ran past `timeout`."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            os.wait4(proc.pid, 0)
            return None, None
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--naive-sizes", default="10000,20000")
    ap.add_argument("--naive-timeout", type=float, default=120)
    ap.add_argument("--keep", metavar="DIR", help="keep the databases and PDFs here")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    naive_sizes = [int(x) for x in args.naive_sizes.split(",") if x]
    work = Path(args.keep or tempfile.mkdtemp(prefix="casectl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")  # the databases' chain keys stay in the work folder
    casectl = shutil.which("casectl", path=str(Path(sys.executable).parent)) or "casectl"
    env = {
        **os.environ,
        "CASECTL_NOW": "2025-02-04T00:00:00Z",
        "CASECTL_ALLOW_CLOCK": "1",
        "CASECTL_ACTOR": "bench",
        "CASECTL_NO_DELIVER": "1",
    }
    results: dict[tuple[str, int], tuple] = {}
    print(f"casectl report benchmark (cpu count {os.cpu_count()}; shared machines make these noisy)")
    for n in sorted(set(sizes) | set(naive_sizes)):
        db = work / f"cases-{n}.db"
        if not db.exists():
            t0 = time.perf_counter()
            make_db(db, n)
            print(f"  made {n:,} cases in {time.perf_counter() - t0:.1f} s")
        if n in sizes:
            pdf = work / f"overview-{n}.pdf"
            secs, mb = measure([casectl, "--db", str(db), "report", "-o", str(pdf)], env, timeout=600)
            pages = pdf.read_bytes().count(b"/Type /Page\n") or "?"
            results[("casectl", n)] = (secs, mb)
            print(
                f"  casectl report  {n:>7,} cases: {secs:7.2f} s  peak {mb:6.1f} MB  "
                f"({pdf.stat().st_size / 1e6:.1f} MB PDF, {pages} pages)"
            )
        if n in naive_sizes:
            secs, mb = measure(
                [sys.executable, "-c", NAIVE, str(db), str(work / f"naive-{n}.pdf")], env, timeout=args.naive_timeout
            )
            results[("naive", n)] = (secs, mb)
            if secs is None:
                print(f"  naive one table {n:>7,} cases: did not finish in {args.naive_timeout:.0f} s")
            else:
                print(f"  naive one table {n:>7,} cases: {secs:7.2f} s  peak {mb:6.1f} MB")
    print("ratios:")
    if len(sizes) >= 2:
        a, b = results[("casectl", sizes[0])], results[("casectl", sizes[-1])]
        print(
            f"  casectl {sizes[-1]:,} / {sizes[0]:,} cases: time x{b[0] / a[0]:.1f} (target <= 10), "
            f"memory x{b[1] / a[1]:.2f}"
        )
        print(
            f"  targets: {sizes[-1]:,} cases under 30 s: {'yes' if b[0] < 30 else 'NO'} ({b[0]:.1f} s); "
            f"peak under 300 MB: {'yes' if b[1] < 300 else 'NO'} ({b[1]:.0f} MB)"
        )
    for n in naive_sizes:
        naive, ours = results.get(("naive", n)), results.get(("casectl", n))
        if naive and ours and naive[0]:
            print(f"  naive / casectl at {n:,} cases: time x{naive[0] / ours[0]:.1f}, memory x{naive[1] / ours[1]:.2f}")
    if len(naive_sizes) >= 2 and all(results[("naive", n)][0] for n in naive_sizes):
        a, b = results[("naive", naive_sizes[0])], results[("naive", naive_sizes[-1])]
        print(
            f"  naive {naive_sizes[-1]:,} / {naive_sizes[0]:,} cases: time x{b[0] / a[0]:.1f} "
            f"(rows x{naive_sizes[-1] / naive_sizes[0]:.0f})"
        )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
