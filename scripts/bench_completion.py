#!/usr/bin/env python3
"""How long the shell waits for casectl's completions, as whole processes, on a big database.

Prints the median wall time of N runs of each completion request the shell makes
(`_CASECTL_COMPLETE=bash_complete COMP_WORDS=... COMP_CWORD=... casectl`): command
names, options, workflow names, statuses, view names, a case's blocks, and case ids
(with and without a prefix), next to the floor measured in the same run
(`python -c "import sqlite3"`, an interpreter that can open SQLite) and `casectl --help`
(casectl's own start-up), with the ratio to the floor.

The database is built by scripts/bench_queries.py's builder (the real schema, made by
casectl's migrations; 1,000,000 cases by default, a few minutes): keep it with --db and
--keep, and reuse it on the next run.

    .venv/bin/python scripts/bench_completion.py --db /tmp/c1m.db --keep
    .venv/bin/python scripts/bench_completion.py --cases 100000 --runs 11

Target: every completion under 150 ms. The machine may be shared: figures are noisy,
the ratio to the floor less so.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_MS = 150


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """The wall time of `cmd` in ms, and what it printed."""
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    ms = (time.perf_counter() - t) * 1000
    if done.returncode != 0 or done.stderr:
        raise SystemExit(f"{cmd} failed ({done.returncode}): {done.stderr.strip()}")
    return ms, done.stdout


def completing(words: str, env: dict[str, str]) -> dict[str, str]:
    """The environment bash's completion function gives casectl for the line `words`
    (the word under the cursor is the last one; a trailing space starts a new, empty one)."""
    parts = words.split(" ")
    return {**env, "_CASECTL_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, help="The database to build (or, with --keep, reuse).")
    ap.add_argument("--keep", "--reuse", action="store_true", help="Reuse --db if it exists; keep it afterwards.")
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()

    import compileall

    import casectl

    # What an installed casectl has: bytecode (PYTHONDONTWRITEBYTECODE would recompile every call).
    compileall.compile_dir(Path(casectl.__file__).parent, quiet=1)
    path = args.db or Path(tempfile.mkdtemp()) / "bench.db"
    os.environ.setdefault("CASECTL_CHAIN_KEY_FILE", f"{path}.key")
    if not (args.keep and path.exists()):
        if path.exists():
            path.unlink()
        from bench_queries import build

        build(path, args.cases)
    casectl_bin = shutil.which("casectl", path=str(Path(sys.executable).parent)) or "casectl"
    cache = Path(tempfile.mkdtemp())  # completion's command table (see casectl/cli/completion.py)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CASECTL_")},
        "CASECTL_DB": str(path),
        "CASECTL_CHAIN_KEY_FILE": os.environ["CASECTL_CHAIN_KEY_FILE"],
        "CASECTL_NO_DELIVER": "1",
        "XDG_CACHE_HOME": str(cache),
    }
    top = subprocess.run(
        [casectl_bin, "list", "--sort", "-id", "--limit", "1", "--ids"], capture_output=True, text=True, env=env
    ).stdout.strip()
    rows: list[tuple[str, list[str], dict[str, str]]] = [
        ("python -c 'import sqlite3' (floor)", [sys.executable, "-c", "import sqlite3"], env),
        ("casectl --help (start-up)", [casectl_bin, "--help"], env),
        ("commands: casectl li", [casectl_bin], completing("casectl li", env)),
        ("options: casectl list --st", [casectl_bin], completing("casectl list --st", env)),
        ("workflows: list --workflow ''", [casectl_bin], completing("casectl list --workflow ", env)),
        ("statuses: list -w kyb --status ''", [casectl_bin], completing("casectl list --workflow kyb --status ", env)),
        ("views: list --view ''", [casectl_bin], completing("casectl list --view ", env)),
        ("case ids: show C-12", [casectl_bin], completing("casectl show C-12", env)),
        ("case ids: show ''", [casectl_bin], completing("casectl show ", env)),
        ("case ids: act 9", [casectl_bin], completing("casectl act 9", env)),
        ("actions: act ID ''", [casectl_bin], completing(f"casectl act {top} ", env)),
        (f"blocks: attach {top} ''", [casectl_bin], completing(f"casectl attach {top} ", env)),
    ]
    for _, cmd, e in rows:  # warm the page cache, the .pyc files and the command table
        subprocess.run(cmd, capture_output=True, env=e, check=False)
    # Round after round, every request once: a burst of load on a shared machine falls on all
    # of them alike instead of on whichever was being measured.
    times: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    items: dict[str, int] = {}
    table = cache / "casectl" / "completion.json"
    cold: list[float] = []
    for _ in range(args.runs):
        for label, cmd, e in rows:
            ms, out = run_once(cmd, e)
            times[label].append(ms)
            items[label] = len([line for line in out.splitlines() if line])
        table.unlink()  # the first request after casectl changed: it describes every command again
        cold.append(run_once([casectl_bin], completing("casectl show C-12", env))[0])
    shutil.rmtree(cache, ignore_errors=True)
    floor = statistics.median(times[rows[0][0]])
    size = path.stat().st_size / 1e6
    print(f"completion as the shell runs it, median of {args.runs} runs, database {path} ({size:,.0f} MB)")
    print(f"{'request':<40} {'ms':>7} {'x floor':>8} {'items':>6}")
    ok = True
    for label, _, _ in rows:
        ms = statistics.median(times[label])
        reference = label.startswith(("python", "casectl --help"))
        print(f"{label:<40} {ms:7.1f} {ms / floor:8.2f} {'' if reference else items[label]:>6}")
        if not reference:
            ok &= ms < TARGET_MS
    ms = statistics.median(cold)
    print(f"{'show C-12, command table not cached yet':<40} {ms:7.1f} {ms / floor:8.2f}  (once per casectl change)")
    print(f"target (every completion < {TARGET_MS} ms with its table cached): {'met' if ok else 'NOT met'}")
    if not args.keep and not args.db:
        path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
