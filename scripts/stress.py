#!/usr/bin/env python3
"""Several processes working the same cases at once; then checks that nothing was lost.

Each worker process runs real casectl commands (in-process, through Typer's
CliRunner, so every command opens its own connection like a separate call
would) picking at random among allowed and forbidden actions, system events,
direct status changes, takes, notes and tags on the same cases; one worker
also imports a CSV batch. Afterwards it checks:
  - no command exited with a code other than 0, 4, 5 or 6;
  - no raw "database is locked" reached a user;
  - every successful single-event command left exactly one event;
  - `casectl db check` passes (integrity, hash chains, replay of every
    case's events through the rules gives its stored status).

Usage: scripts/stress.py [--procs 8] [--cases 200] [--seconds 20] [--db PATH]
Exit 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ALLOWED_CODES = {0, 4, 5, 6}


def _ops(case_ids: list[str], worker: int, rng: random.Random):
    """One random command: (args, events it adds to its case when it succeeds, case id or None)."""
    cid = rng.choice(case_ids)
    pick = rng.random()
    if pick < 0.25:
        return (
            [
                "event",
                cid,
                rng.choice(
                    ["collection_completed", "kyc_completed", "reupload_received", "initiated", "subject_submitted"]
                ),
            ],
            1,
            cid,
        )
    if pick < 0.45:
        return ["approve", cid], 1, cid
    if pick < 0.55:
        return ["reject", cid, "--reason", f"stress {worker}"], 1, cid
    if pick < 0.62:
        return ["act", cid, rng.choice(["request_reuploads", "fly", "cancel"]), "--reason", "r"], 1, cid
    if pick < 0.70:
        return ["status", cid, rng.choice(["open", "pending", "declined", "in_progress"])], 1, cid
    if pick < 0.78:
        return ["note", cid, f"note from worker {worker}"], 1, cid
    if pick < 0.86:
        return ["tag", cid, f"+w{worker}"], None, cid  # a no-op tag may add no event
    if pick < 0.93:
        return ["take"], 1, None
    return ["show", cid, "--json"], 0, cid


def worker(db: str, case_ids: list[str], seconds: float, index: int, out: str, import_file: str | None) -> None:
    os.environ["CASECTL_DB"] = db
    os.environ["CASECTL_CHAIN_KEY_FILE"] = _key_file(db)
    os.environ["CASECTL_ACTOR"] = f"agent{index}"
    os.environ["CASECTL_NO_DELIVER"] = "1"
    from casectl.cli.app import app
    from typer.testing import CliRunner

    runner = CliRunner()
    rng = random.Random(index)
    codes: Counter = Counter()
    successes: Counter = Counter()  # case id -> events its successful commands added
    taken_events = 0
    locked = []
    tracebacks = []
    unknown = 0
    deadline = time.monotonic() + seconds
    if import_file:
        r = runner.invoke(app, ["import", import_file, "--workflow", "simple"])
        codes[r.exit_code] += 1
        if r.exit_code not in ALLOWED_CODES and "No such command" not in r.output:
            tracebacks.append(f"import: {r.exit_code}: {r.output[-300:]}")
    while time.monotonic() < deadline:
        args, events, cid = _ops(case_ids, index, rng)
        r = runner.invoke(app, args, catch_exceptions=True)
        err = r.stderr if hasattr(r, "stderr") else r.output
        if r.exit_code == 2 and ("No such command" in err or "no command" in err):
            unknown += 1  # a command this build does not have yet
            continue
        codes[r.exit_code] += 1
        if "database is locked" in (r.stdout + err).lower() and "stayed locked" not in err:
            locked.append(" ".join(args))
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            tracebacks.append(f"{' '.join(args)}: {type(r.exception).__name__}: {r.exception}")
        if r.exit_code == 0 and events:
            if args[0] == "take":
                taken_events += 1
                successes[r.stdout.strip()] += 1
            else:
                successes[cid] += events
    Path(out).write_text(
        json.dumps(
            {
                "codes": dict(codes),
                "successes": dict(successes),
                "locked": locked,
                "tracebacks": tracebacks,
                "unknown": unknown,
                "taken": taken_events,
            }
        )
    )


def _raw(db: str):
    """The database below casectl's commands, on either backend (sqlite3's API)."""
    if db.startswith(("postgresql://", "postgres://")):
        from casectl.store import pg

        return pg.connect(db, busy_timeout=30)
    return sqlite3.connect(db)


def _key_file(db: str) -> str:
    # Beside a throw-away SQLite file; for a PostgreSQL database, in the temporary folder.
    if db.startswith(("postgresql://", "postgres://")):
        import hashlib

        digest = hashlib.sha256(db.encode()).hexdigest()[:16]  # the same in every worker process
        return os.path.join(tempfile.gettempdir(), f"casectl-stress-{digest}.key")
    return f"{db}.key"


def prepare(db: str, cases: int) -> list[str]:
    from casectl.cli.app import app
    from casectl.services import lifecycle
    from casectl.services.records import NewCase
    from casectl.store import connect, write
    from casectl.timeutil import now
    from typer.testing import CliRunner

    os.environ["CASECTL_DB"] = str(db)
    os.environ["CASECTL_CHAIN_KEY_FILE"] = _key_file(db)
    CliRunner().invoke(app, ["init"])
    conn = connect(db)
    t = now()
    ids = []
    with write(conn):
        for i in range(cases):
            wf = ("kyb", "simple", "screening")[i % 3]
            nc = NewCase(workflow=wf, ref=f"STRESS-{i}", subject_email=f"s{i}@example.com")
            ids.append(f"C-{lifecycle.insert_case(conn, nc, actor='setup', now=t)}")
    conn.close()
    return ids


def run(db: str, procs: int, cases: int, seconds: float) -> dict:
    case_ids = prepare(db, cases)
    before = _raw(db)
    events_before = {r[0]: r[1] for r in before.execute("SELECT case_id, count(*) FROM events GROUP BY case_id")}
    before.close()
    tmp = Path(tempfile.mkdtemp(prefix="casectl-stress-"))
    import_file = tmp / "batch.csv"
    import_file.write_text(
        "ref,subject_name,subject_email\n" + "".join(f"BATCH-{i},Batch {i},batch{i}@example.com\n" for i in range(50))
    )
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(
            target=worker,
            args=(str(db), case_ids, seconds, i, str(tmp / f"w{i}.json"), str(import_file) if i == 0 else None),
        )
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results = [json.loads((tmp / f"w{i}.json").read_text()) for i in range(procs)]
    codes: Counter = Counter()
    successes: Counter = Counter()
    locked, tracebacks = [], []
    for r in results:
        codes.update({int(k): v for k, v in r["codes"].items()})
        successes.update(r["successes"])
        locked += r["locked"]
        tracebacks += r["tracebacks"]
    conn = _raw(db)
    events_after = {r[0]: r[1] for r in conn.execute("SELECT case_id, count(*) FROM events GROUP BY case_id")}
    # Events that are not one command's doing: a child case finishing moves its parent.
    lost = {}
    for cid in case_ids:
        n = int(cid[2:])
        added = events_after.get(n, 0) - events_before.get(n, 0)
        if added != successes.get(cid, 0) and not _tag_or_system_events_explain(conn, n, added, successes.get(cid, 0)):
            lost[cid] = {"events_added": added, "successful_commands": successes.get(cid, 0)}
    conn.close()
    from casectl.cli.app import app
    from typer.testing import CliRunner

    check = CliRunner().invoke(
        app, ["db", "check", "--json"], env={"CASECTL_DB": str(db), "CASECTL_CHAIN_KEY_FILE": _key_file(db)}
    )
    return {
        "commands": sum(codes.values()),
        "exit_codes": dict(sorted(codes.items())),
        "bad_exit_codes": {c: n for c, n in codes.items() if c not in ALLOWED_CODES},
        "raw_locked_errors": locked,
        "tracebacks": tracebacks[:10],
        "event_mismatches": lost,
        "db_check": json.loads(check.stdout) if check.exit_code in (0, 1) and check.stdout.strip() else check.output,
    }


def _tag_or_system_events_explain(conn: sqlite3.Connection, case_id: int, added: int, expected: int) -> bool:
    """Tag changes (not counted up front) and tag events are allowed extra events."""
    extra = conn.execute("SELECT count(*) FROM events WHERE case_id = ? AND kind LIKE 'tag%'", (case_id,)).fetchone()[0]
    return added - extra == expected


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--db", help="a SQLite file (made) or a postgresql:// URL of an empty database")
    args = ap.parse_args()
    db = args.db or str(Path(tempfile.mkdtemp(prefix="casectl-stress-db-")) / "stress.db")
    t = time.perf_counter()
    report = run(db, args.procs, args.cases, args.seconds)
    report["seconds"] = round(time.perf_counter() - t, 1)
    report["commands_per_second"] = round(report["commands"] / args.seconds, 1)
    ok = (
        not report["bad_exit_codes"]
        and not report["raw_locked_errors"]
        and not report["event_mismatches"]
        and not report["tracebacks"]
        and isinstance(report["db_check"], dict)
        and report["db_check"]["ok"]
    )
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
