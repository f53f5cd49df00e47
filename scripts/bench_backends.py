#!/usr/bin/env python3
"""SQLite and PostgreSQL side by side, each against hand-written SQL on the same backend.

One run, one machine, both backends (PostgreSQL: a throw-away cluster from tests/pg_cluster.py,
or --pg URL):

1. queries at N cases (default 1,000,000): list filters, `--where data.PATH=VALUE`, search and
   stats: the service call the command makes (rows turned into case dicts), next to the same
   query written by hand for that backend (the floor), medians of --runs; targets: within 2x
   of the floor and under 10 ms for list filters;
2. a CSV import of M rows (default 100,000): a real `casectl import` process on each backend,
   next to the hand-written load of the same rows (SQLite: executemany; PostgreSQL: COPY);
   target: PostgreSQL at least as fast as SQLite;
3. --agents processes (default 16) for --seconds (default 60) on PostgreSQL, each looping
   take / act / note / tag / a small import / outbox deliver: counts of each exit code (only
   documented ones may appear), duplicate takes (a case taken twice: must be 0), lost updates
   (notes the agents were told were added against notes in the database: must be equal) and
   `db check` afterwards.

    .venv/bin/python scripts/bench_backends.py                      # the full run
    .venv/bin/python scripts/bench_backends.py --cases 100000 --import-rows 20000 --seconds 10

The machine may be shared: figures are noisy; run it twice.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "tests")]

from casectl.filters import CaseFilter  # noqa: E402
from casectl.services import listing  # noqa: E402
from casectl.services import search as search_service  # noqa: E402
from casectl.services import stats as stats_service  # noqa: E402
from casectl.store import connect  # noqa: E402
from casectl.store import search as search_store  # noqa: E402
from casectl.timeutil import iso  # noqa: E402

import bench_import  # noqa: E402
import bench_queries as bq  # noqa: E402

PAGE = 50
ROW = bq.ROW


def median_ms(fn, runs: int) -> float:
    return bq.median_ms(fn, runs)


def env_for(target, key_file: str) -> dict[str, str]:
    return {
        **os.environ,
        "CASECTL_DB": str(target),
        "CASECTL_CHAIN_KEY_FILE": key_file,
        "CASECTL_ACTOR": "bench",
        "CASECTL_NO_DELIVER": "1",
        "XDG_CONFIG_HOME": str(Path(key_file).parent),
    }


# --- 1. queries ------------------------------------------------------------------------


def query_cases(conn, raw, postgres: bool, n: int):
    """(name, ours, floor) for one backend; `raw(sql, params)` runs hand-written SQL on the
    driver itself (sqlite3, or psycopg with %s placeholders)."""
    now = iso(bq.NOW)
    q = "%s" if postgres else "?"

    def ours(f: CaseFilter):
        return lambda: list(listing.select(conn, f, limit=PAGE))

    def floor(where: str, params: list, order: str = "c.id"):
        sql = f"{ROW} WHERE {where} ORDER BY {order} LIMIT {PAGE}".replace("?", q)
        if postgres:
            sql = sql.replace("json_group_array(tag)", "coalesce(json_agg(tag)::text, '[]')")
        return lambda: raw(sql, params)

    target = f"R{n // 2}"
    out = [
        ("list (no filter)", ours(CaseFilter()), floor("TRUE", [])),
        ("--status manual_review", ours(CaseFilter(statuses=("manual_review",))), floor(f"c.status = {q}", ["manual_review"])),
        ("--workflow screening", ours(CaseFilter(workflow="screening")), floor(f"c.workflow = {q}", ["screening"])),
        ("--assignee agent7", ours(CaseFilter(assignee="agent7")), floor(f"c.assignee = {q}", ["agent7"])),
        ("--tag rare", ours(CaseFilter(tags=("rare",))), floor(f"c.id IN (SELECT case_id FROM case_tags WHERE tag = {q})", ["rare"])),
        ("--unassigned", ours(CaseFilter(unassigned=True)), floor("c.assignee IS NULL", [])),
        ("--open", ours(CaseFilter(open_only=True)), floor("c.final = 0", [])),
        ("--overdue", ours(CaseFilter(overdue_at=now)), floor(f"c.final = 0 AND c.due_at < {q}", [now])),
        ("--status + --workflow", ours(CaseFilter(statuses=("manual_review",), workflow="kyb")),
         floor(f"c.status = {q} AND c.workflow = {q}", ["manual_review", "kyb"])),
    ]  # fmt: skip
    from casectl.filters import WhereClause

    where = CaseFilter(where=(WhereClause(scope="data", path=("company", "reg_no"), value=target),))
    if postgres:
        data_floor = floor(f"c.data::jsonb @> {q}::jsonb", [json.dumps({"company": {"reg_no": target}})])
    else:
        data_floor = floor(f"json_extract(c.data, '$.company.reg_no') = {q}", [target])
    out.append((f"--where data.company.reg_no={target}", ours(where), data_floor))
    for text in ("smith", "zoë mül", "ada@exa", "REF-77777"):
        match = search_service.match_query(text)
        if postgres:
            sql = (
                f"{ROW[: ROW.index(' FROM cases c')]} FROM case_search cs JOIN cases c ON c.id = cs.id "
                "LEFT JOIN subjects s ON s.id = c.subject_id "
                "WHERE cs.doc @@ to_tsquery('simple', lower(unaccent(%s))) "
                "ORDER BY ts_rank('{0.05, 0.1, 0.2, 1.0}', cs.doc, to_tsquery('simple', lower(unaccent(%s)))) DESC "
                "LIMIT %s"
            ).replace("json_group_array(tag)", "coalesce(json_agg(tag)::text, '[]')")
            tq = search_store.tsquery(match)
            search_floor = lambda sql=sql, tq=tq: raw(sql, [tq, tq, PAGE])  # noqa: E731
        else:
            sql = (
                f"{ROW[: ROW.index(' FROM cases c')]} FROM case_search JOIN cases c ON c.id = case_search.rowid "
                "LEFT JOIN subjects s ON s.id = c.subject_id WHERE case_search MATCH ? ORDER BY rank LIMIT ?"
            )
            search_floor = lambda sql=sql, match=match: raw(sql, [match, PAGE])  # noqa: E731
        out.append(
            (
                f"search '{text}'",
                lambda text=text: list(search_service.search(conn, text, CaseFilter(), limit=PAGE)),
                search_floor,
            )
        )
    since = iso(bq.NOW - timedelta(days=30))

    def stats_floor():
        raw("SELECT count(*) FROM cases WHERE final = 0", [])
        raw("SELECT count(*) FROM cases WHERE final = 1", [])
        raw(f"SELECT count(*) FROM cases WHERE final = 0 AND due_at < {q}", [now])
        raw(f"SELECT count(*) FROM cases WHERE created_at >= {q} AND created_at <= {q}", [since, now])
        raw(
            f"SELECT count(*), count(*) FILTER (WHERE decided_at > due_at) FROM cases WHERE final = 1 "
            f"AND decided_at >= {q} AND decided_at <= {q}",
            [since, now],
        )
        k = raw(f"SELECT count(*) FROM cases WHERE final = 1 AND decided_at >= {q} AND decided_at <= {q}", [since, now])
        seconds = (
            "extract(epoch FROM decided_at::timestamptz - created_at::timestamptz)"
            if postgres
            else "(julianday(decided_at) - julianday(created_at)) * 86400"
        )
        raw(
            f"SELECT {seconds} AS s FROM cases WHERE final = 1 AND decided_at >= {q} AND decided_at <= {q} "
            f"ORDER BY s LIMIT 1 OFFSET {q}",
            [since, now, k[0][0] // 2],
        )  # the median, as the SQLite floor of bench_queries has it
        raw("SELECT assignee, count(*) FROM cases WHERE final = 0 GROUP BY assignee", [])

    out.append(("stats (30 days)", lambda: stats_service.stats(conn, CaseFilter(), now=bq.NOW), stats_floor))
    return out


def bench_queries(targets: dict[str, object], n: int, runs: int) -> dict[str, dict[str, tuple[float, float]]]:
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for backend, target in targets.items():
        print(f"building {n:,} cases on {backend}", file=sys.stderr)
        bq.build(target, n)
        conn = connect(target)
        postgres = backend == "postgresql"
        if postgres:
            raw_conn = conn.raw  # type: ignore[attr-defined]

            def raw(sql, params, raw_conn=raw_conn):
                return raw_conn.execute(sql, params).fetchall()
        else:
            import sqlite3

            plain = sqlite3.connect(str(target))

            def raw(sql, params, plain=plain):
                return plain.execute(sql, params).fetchall()

        results[backend] = {}
        for name, ours, floor in query_cases(conn, raw, postgres, n):
            results[backend][name] = (median_ms(ours, runs), median_ms(floor, runs))
        conn.close()
    return results


# --- 2. import -------------------------------------------------------------------------------


def bench_import_both(
    targets: dict[str, object], rows: int, work: Path, floor_pg: str
) -> dict[str, tuple[float, float]]:
    csv_path = work / "import.csv"
    bench_import.generate(csv_path, rows)
    out = {}
    for backend, target in targets.items():
        key = str(work / f"{backend}.key")
        env = env_for(target, key)
        subprocess.run([bench_import.tool("casectl"), "init"], env=env, check=True, capture_output=True)
        t0 = time.perf_counter()
        subprocess.run(
            [bench_import.tool("casectl"), "import", str(csv_path), "--workflow", "kyb"],
            env=env,
            check=True,
            capture_output=True,
        )
        ours = time.perf_counter() - t0
        floor = _floor_load(backend, floor_pg, csv_path, work)
        out[backend] = (ours, floor)
    return out


def _floor_load(backend: str, floor_pg: str, csv_path: Path, work: Path) -> float:
    """The same rows as subjects and cases, loaded by hand into a fresh casectl schema, reading
    the CSV included (SQLite: bench_import's executemany; PostgreSQL: COPY)."""
    if backend == "sqlite":
        return bench_import.bench_raw(csv_path, work)[0]
    import psycopg

    with psycopg.connect(floor_pg, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO workflows (name, version, definition, builtin, created_at) "
            "VALUES ('kyb', 1, '{}', 1, '2026-01-01T00:00:00Z') ON CONFLICT DO NOTHING"
        )
        t0 = time.perf_counter()
        subjects, cases = bench_import._raw_rows(csv_path)
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(
                "COPY subjects (id, name, email, email_key, dob, country, entity_type, data, created_at, updated_at) FROM STDIN"
            ) as cp:
                for r in subjects:
                    cp.write_row(r)
            with cur.copy(
                "COPY cases (id, ref, workflow, workflow_version, status, final, subject_id, data, registry_data, priority, "
                "created_at, updated_at, origin) FROM STDIN"
            ) as cp:
                for r in cases:
                    cp.write_row(r)
        return time.perf_counter() - t0


# --- 3. agents ----------------------------------------------------------------------------

AGENT = r"""
import json, os, random, subprocess, sys, time
casectl, seconds, me, csv_path = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
env = {**os.environ, "CASECTL_ACTOR": me}
rnd = random.Random(me)
codes, notes, takes = {}, 0, []
end = time.monotonic() + seconds
def run(*args):
    p = subprocess.run([casectl, *args], env=env, capture_output=True, text=True)
    codes[str(p.returncode)] = codes.get(str(p.returncode), 0) + 1
    return p
while time.monotonic() < end:
    p = run("take", "--json")
    case = json.loads(p.stdout)["id"] if p.returncode == 0 and p.stdout.strip() else None
    if case:
        takes.append(case)
        if run("note", case, f"{me} called").returncode == 0:
            notes += 1
        run("tag", case, f"+{me}")
        run("act", case, "approve" if rnd.random() < 0.5 else "reject", "--reason", "bench")
    else:
        r = rnd.random()
        if r < 0.3:
            run("import", csv_path, "--workflow", "simple")
        else:
            run("outbox", "deliver")
print(json.dumps({"codes": codes, "notes": notes, "takes": takes}))
"""


def bench_agents(target: str, key: str, agents: int, seconds: float, work: Path) -> dict:
    env = env_for(target, key)
    env["CASECTL_NO_DELIVER"] = "1"
    subprocess.run([bench_import.tool("casectl"), "init"], env=env, check=True, capture_output=True)
    seed = work / "seed.csv"
    with open(seed, "w") as f:
        f.write("ref,subject_name\n" + "".join(f"SEED-{i},Seed {i}\n" for i in range(agents * 20)))
    subprocess.run(
        [bench_import.tool("casectl"), "import", str(seed), "--workflow", "simple"],
        env=env,
        check=True,
        capture_output=True,
    )
    small = work / "small.csv"  # every agent imports the same file: the refs make it safe to repeat
    with open(small, "w") as f:
        f.write("ref,subject_name\n" + "".join(f"MORE-{i},More {i}\n" for i in range(5)))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AGENT, bench_import.tool("casectl"), str(seconds), f"agent{i}", str(small)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(agents)
    ]
    reports = [json.loads(p.communicate()[0]) for p in procs]
    codes: Counter = Counter()
    for r in reports:
        codes.update(r["codes"])
    taken = [c for r in reports for c in r["takes"]]
    told_notes = sum(r["notes"] for r in reports)
    import psycopg

    with psycopg.connect(target) as conn:
        in_db = conn.execute("SELECT count(*) FROM notes").fetchone()[0]
        take_events = conn.execute("SELECT count(*) FROM events WHERE action = 'take'").fetchone()[0]
    check = subprocess.run([bench_import.tool("casectl"), "db", "check"], env=env, capture_output=True, text=True)
    return {
        "commands": sum(codes.values()),
        "codes": dict(sorted(codes.items())),
        "takes": len(taken),
        "duplicate_takes": len(taken) - len(set(taken)),
        "take_events": take_events,
        "notes_told": told_notes,
        "notes_in_db": in_db,
        "lost_updates": told_notes - in_db,
        "db_check": check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr.strip(),
    }


# --- main ----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--import-rows", type=int, default=100_000)
    ap.add_argument("--agents", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument(
        "--pg", help="a PostgreSQL server URL to use (a database this run may fill), else a throw-away cluster"
    )
    ap.add_argument("--skip", action="append", default=[], choices=("queries", "import", "agents"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="casectl-bench-"))
    os.environ["CASECTL_CHAIN_KEY_FILE"] = str(work / "bench.key")
    os.environ["XDG_CONFIG_HOME"] = str(work)
    cluster = None
    if args.pg:
        base = args.pg
    else:
        from pg_cluster import Cluster

        cluster = Cluster().start()
        base = cluster.url()

    def pg_schema(name: str) -> str:
        import psycopg

        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            c.execute(f"CREATE SCHEMA {name}")
            c.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}options=-csearch_path%3D{name},public"

    print(f"casectl on SQLite and PostgreSQL, one machine ({os.cpu_count()} cores), work in {work}")
    if "queries" not in args.skip:
        targets = {"sqlite": work / "q.db", "postgresql": pg_schema("bench_q")}
        res = bench_queries(targets, args.cases, args.runs)
        print(
            f"\n1. queries at {args.cases:,} cases: median ms of {args.runs} runs (ours / hand-written floor = ratio)"
        )
        print(f"{'query':<36} {'SQLite':>24} {'PostgreSQL':>24}")
        for name in res["sqlite"]:
            cells = []
            for backend in ("sqlite", "postgresql"):
                a, b = res[backend][name]
                limit = 100 if name.startswith("stats") else 50 if name.startswith("search") else 10
                ok = a < limit and (a <= 2 * b or limit != 10)
                cells.append(f"{a:7.2f}/{b:7.2f}={a / b if b else 0:5.2f}{'' if ok else '!'}")
            print(f"{name:<36} {cells[0]:>24} {cells[1]:>24}")
        print("(! = outside its target: list filters <10 ms and <=2x, search <50 ms, stats <100 ms)")
    if "import" not in args.skip:
        targets = {"sqlite": work / "i.db", "postgresql": pg_schema("bench_i")}
        floor_pg = pg_schema("bench_i_floor")
        env = env_for(floor_pg, str(work / "floor.key"))
        subprocess.run([bench_import.tool("casectl"), "init"], env=env, check=True, capture_output=True)
        res_i = bench_import_both(targets, args.import_rows, work, floor_pg)
        print(f"\n2. import of {args.import_rows:,} rows (whole process; floor: executemany / COPY by hand)")
        for backend, (ours, floor) in res_i.items():
            print(
                f"  {backend:<11} casectl {ours:6.2f} s ({args.import_rows / ours:8,.0f} rows/s)  floor {floor:6.2f} s  ratio {ours / floor:5.2f}"
            )
        print(f"  PostgreSQL / SQLite: {res_i['postgresql'][0] / res_i['sqlite'][0]:.2f} (target <= 1)")
    if "agents" not in args.skip:
        res_a = bench_agents(pg_schema("bench_a"), str(work / "agents.key"), args.agents, args.seconds, work)
        print(f"\n3. {args.agents} agent processes for {args.seconds:g} s on PostgreSQL")
        for k, v in res_a.items():
            print(f"  {k:<16} {v}")
    if cluster is not None:
        cluster.stop()
    return 0


if __name__ == "__main__":
    random.seed(0)
    raise SystemExit(main())
