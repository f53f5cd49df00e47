#!/usr/bin/env python3
"""Kill real casectl processes with SIGKILL in the middle of sizeable writes; check nothing is half done.

It creates a database in a temporary directory (`casectl init`, a chain key in
its own config directory), then for each round starts one `casectl` process
doing a sizeable write, picked at random:

  import FILE      a CSV of a few thousand rows
  import -         the same from stdin (spooled to a temporary file first)
  act - ACTION     approve or decline hundreds of ids read from stdin
  tag - +TAG       tag a thousand ids read from stdin
  redact S-n       erase a subject with dozens of cases
  purge            delete every case closed before now
  attach FILE      a document of several MB (and `attach -` from stdin)
  export -o FILE   CSV, JSON or NDJSON of every case, sometimes over an old file
  db backup FILE   an online copy, sometimes over an old file (--force)

and kills it after a random delay. Then it checks:

  - `casectl db check` exits 0 (integrity, keyed chains, chain heads, seal);
  - the command's effects are all or nothing (an import added no case or every
    row; every id moved, or none did; a redacted subject lost every value at
    once, and no byte of its email is left in the database file or its WAL);
  - no half-written output under the final name: an -o target is absent, the
    old file byte for byte, or complete and valid (every case in it);
  - temporary files the kill left (`.casectl-tmp-<pid>-...`) are removed by
    the next run of the same command.

A kill is counted as "mid-transaction" when the killed process held the
database's write lock at the moment of the kill, "after commit" when its
effects are there (or its output file is complete), "mid-write" when it was
writing a temporary file (a spooled stdin, a staged output), "before any
change" otherwise; some commands finish before their kill.

The seed fixes every choice (commands, sizes, data, delays as a share of the
command's usual time); where the kills land still depends on the machine.

Usage: scripts/crash.py [--rounds 40] [--seed 1] [--db PATH] [--keep] [--kinds import,act,...]
Exit 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

TMP_PREFIX = ".casectl-tmp-"  # casectl.files.TMP_PREFIX
# What each kind of command usually takes on a 2-core machine, in seconds (start-up included);
# the kill comes after a random share of it. Each run that finishes first updates it.
USUAL_SECONDS = {
    "import": 1.6,
    "import-stdin": 1.6,
    "act": 1.0,
    "tag": 1.0,
    "redact": 0.8,
    "purge": 0.8,
    "attach": 0.8,
    "attach-stdin": 0.8,
    "export": 1.0,
    "backup": 0.9,
}
WEIGHTS = {
    "import": 3,
    "import-stdin": 2,
    "act": 3,
    "tag": 2,
    "redact": 2,
    "purge": 2,
    "attach": 2,
    "attach-stdin": 1,
    "export": 2,
    "backup": 2,
}
BLOCK_CASES = 4  # cases made at the start with a document block, for attach
SUBJECTS_PER_IMPORT = 20


def casectl_command() -> list[str]:
    script = Path(sys.executable).parent / "casectl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "casectl"]


def write_locked_by(db: Path) -> int | None:
    """The pid holding the database's write lock (WAL mode: byte 120 of the -shm file), 0 when
    nobody does, None when it cannot be told. F_GETLK only asks: it takes no lock."""
    try:
        fd = os.open(f"{db}-shm", os.O_RDONLY)
    except OSError:
        return None
    try:
        fmt = "hhqqi4x"  # struct flock on Linux (64-bit off_t)
        got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, fcntl.F_WRLCK, os.SEEK_SET, 120, 1, 0))
        kind, _, _, _, pid = struct.unpack(fmt, got)
        return 0 if kind == fcntl.F_UNLCK else pid
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass
class Op:
    """One command to run (and kill), and how to judge what it left."""

    kind: str
    args: list[str]
    stdin: Path | None = None
    # Called after the kill (and after `db check`): "none", "all", or a failure message.
    verdict: Callable[[], str] = lambda: "none"
    # A small run of the same command, to see that it removes the killed run's temporary files.
    again: list[str] | None = None
    again_stdin: Path | None = None


@dataclass
class Figures:
    rounds: int = 0
    killed: int = 0
    finished: int = 0
    mid_transaction: int = 0
    mid_write: int = 0
    before_change: int = 0
    after_commit: int = 0
    left_temp: int = 0
    cleaned_temp: int = 0
    failures: list[str] = field(default_factory=list)
    by_kind: Counter = field(default_factory=Counter)
    outcome_by_kind: dict[str, Counter] = field(default_factory=dict)


class Crash:
    def __init__(self, work: Path, db: Path, seed: int, kinds: list[str] | None = None):
        self.work = work
        self.kinds = kinds or list(WEIGHTS)
        self.db = db
        self.rng = random.Random(seed)
        self.inputs = work / "in"
        self.out = work / "out"
        self.tmp = work / "tmp"
        for d in (self.inputs, self.out, self.tmp, work / "config", work / "data"):
            d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASECTL_")}
        env.update(
            CASECTL_DB=str(db),
            CASECTL_ACTOR="crash",
            CASECTL_NO_DELIVER="1",
            XDG_CONFIG_HOME=str(work / "config"),  # the chain key file lives there
            XDG_DATA_HOME=str(work / "data"),
            TMPDIR=str(self.tmp),  # where stdin is spooled: the script looks for leftovers there
        )
        self.env = env
        self.cmd = casectl_command()
        self.usual = dict(USUAL_SECONDS)
        self.figures = Figures()
        self.block_cases: list[int] = []

    # --- running casectl ------------------------------------------------------

    def casectl(self, *args: str, stdin: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        with open(stdin, "rb") if stdin else contextlib.nullcontext(subprocess.DEVNULL) as f:
            return subprocess.run(
                [*self.cmd, *args], stdin=f, capture_output=True, text=True, env=self.env, timeout=timeout
            )

    def must(self, *args: str, stdin: Path | None = None) -> str:
        r = self.casectl(*args, stdin=stdin)
        if r.returncode != 0:
            raise SystemExit(f"crash: setup failed: casectl {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r.stdout

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(f"{self.db.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def one(self, sql: str, params: tuple = ()) -> int:
        return self.query(sql, params)[0][0]

    # --- setup ----------------------------------------------------------------

    def setup(self) -> None:
        self.must("init")
        self.must("import", str(self.csv_file("seed", 1500)), "--workflow", "simple")
        for i in range(BLOCK_CASES):
            out = self.must("create", "--workflow", "simple", "--ref", f"BLOCK-{i}", "--block", "document:passport")
            self.block_cases.append(int(out.strip().removeprefix("C-")))

    def csv_file(self, tag: str, rows: int) -> Path:
        path = self.inputs / f"import-{tag}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["ref", "subject_name", "subject_email", "country", "priority"])
            for i in range(rows):
                s = i % SUBJECTS_PER_IMPORT
                w.writerow(
                    [
                        f"I{tag}-{i}",
                        f"Zed{tag}q{s}x",
                        f"s{tag}-{s}@example.com",
                        self.rng.choice(["GB", "FR", "DE", "US"]),
                        self.rng.choice(["low", "normal", "high"]),
                    ]
                )
        return path

    # --- the commands -----------------------------------------------------------

    def prepare(self, kind: str, r: int) -> Op:
        return getattr(self, "op_" + kind.replace("-", "_"))(r)

    def op_import(self, r: int, stdin: bool = False) -> Op:
        rows = self.rng.randint(1500, 3000)
        path = self.csv_file(str(r), rows)
        before = self.one("SELECT count(*) FROM cases")
        events = self.one("SELECT count(*) FROM events")

        def verdict() -> str:
            mine = self.one("SELECT count(*) FROM cases WHERE ref LIKE ?", (f"I{r}-%",))
            total = self.one("SELECT count(*) FROM cases") - before
            added_events = self.one("SELECT count(*) FROM events") - events
            if mine == total == added_events == 0:
                return "none"
            if mine == total == added_events == rows:
                return "all"
            return f"import of {rows} rows left {mine} of its cases, {total} new cases, {added_events} new events"

        small = self.csv_file(f"{r}again", 5)
        if stdin:
            return Op(kind="import-stdin", args=["import", "-", "--workflow", "simple"], stdin=path, verdict=verdict,
                      again=["import", "-", "--workflow", "simple"], again_stdin=small)  # fmt: skip
        return Op(kind="import", args=["import", str(path), "--workflow", "simple"], verdict=verdict,
                  again=["import", str(small), "--workflow", "simple"])  # fmt: skip

    def op_import_stdin(self, r: int) -> Op:
        return self.op_import(r, stdin=True)

    def _ids_file(self, name: str, ids: list[int]) -> Path:
        path = self.inputs / name
        path.write_text("".join(f"C-{i}\n" for i in ids))
        return path

    def op_act(self, r: int) -> Op:
        open_ids = [i for (i,) in self.query("SELECT id FROM cases WHERE status = 'open' AND ref LIKE 'I%'")]
        if len(open_ids) < 50:
            return self.op_import(r)
        ids = sorted(self.rng.sample(open_ids, min(len(open_ids), self.rng.randint(400, 900))))
        action, target = self.rng.choice([("approve", "approved"), ("decline", "declined")])
        marks = ",".join(map(str, ids))
        events = self.one(f"SELECT count(*) FROM events WHERE case_id IN ({marks})")

        def verdict() -> str:
            moved = self.one(f"SELECT count(*) FROM cases WHERE status = ? AND id IN ({marks})", (target,))
            still = self.one(f"SELECT count(*) FROM cases WHERE status = 'open' AND id IN ({marks})")
            added = self.one(f"SELECT count(*) FROM events WHERE case_id IN ({marks})") - events
            if moved == 0 and still == len(ids) and added == 0:
                return "none"
            if moved == len(ids) and added == len(ids):
                return "all"
            return f"act - {action} on {len(ids)} cases: {moved} moved, {still} still open, {added} new events"

        args = ["act", "-", action] + (["--reason", f"crash round {r}"] if action == "decline" else [])
        return Op(kind="act", args=args, stdin=self._ids_file(f"act-{r}.txt", ids), verdict=verdict)

    def op_tag(self, r: int) -> Op:
        every = [i for (i,) in self.query("SELECT id FROM cases")]
        ids = sorted(self.rng.sample(every, min(len(every), self.rng.randint(600, 1500))))
        tag = f"crash{r}"

        def verdict() -> str:
            n = self.one("SELECT count(*) FROM case_tags WHERE tag = ?", (tag,))
            if n == 0:
                return "none"
            if n == len(ids):
                return "all"
            return f"tag - +{tag} on {len(ids)} cases: {n} tagged"

        return Op(kind="tag", args=["tag", "-", f"+{tag}"], stdin=self._ids_file(f"tag-{r}.txt", ids), verdict=verdict)

    def op_redact(self, r: int) -> Op:
        rows = self.query(
            "SELECT s.id, s.email, s.name, count(c.id) AS n FROM subjects s JOIN cases c ON c.subject_id = s.id "
            "WHERE s.redacted_at IS NULL AND s.email IS NOT NULL GROUP BY s.id HAVING n >= 20 ORDER BY s.id"
        )
        if not rows:
            return self.op_import(r)
        sid, email, name, n = self.rng.choice(rows)
        case_ids = ",".join(str(i) for (i,) in self.query("SELECT id FROM cases WHERE subject_id = ?", (sid,)))
        erasures = self.one("SELECT count(*) FROM erasures")

        def verdict() -> str:
            s = self.query("SELECT name, email, redacted_at FROM subjects WHERE id = ?", (sid,))[0]
            marked = self.one(f"SELECT count(*) FROM events WHERE kind = 'redacted' AND case_id IN ({case_ids})")
            recorded = self.one("SELECT count(*) FROM erasures") - erasures
            if s == (name, email, None) and marked == 0 and recorded == 0:
                return "none"
            if s[0] is None and s[1] is None and s[2] and marked == n and recorded == 1:
                leaks = self.byte_search(email.encode(), name.encode())
                return f"redact S-{sid}: its values are still in {', '.join(leaks)}" if leaks else "all"
            return f"redact S-{sid} ({n} cases): subject {s}, {marked} redacted events, {recorded} erasures recorded"

        return Op(kind="redact", args=["redact", f"S-{sid}"], verdict=verdict)

    def byte_search(self, *needles: bytes) -> list[str]:
        found = []
        for path in (self.db, Path(f"{self.db}-wal")):
            with contextlib.suppress(FileNotFoundError):
                data = path.read_bytes()
                found += [f"{path.name} ({needle.decode()})" for needle in needles if needle in data]
        return found

    def op_purge(self, r: int) -> Op:
        cutoff = datetime.now(UTC).replace(microsecond=0)
        stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
        doomed = [
            i
            for (i,) in self.query(  # what maintenance.purge_candidates picks (no families here)
                "SELECT id FROM cases WHERE final = 1 AND coalesce(decided_at, updated_at) < ?", (stamp,)
            )
        ]
        if not doomed:
            return self.op_act(r)
        marks = ",".join(map(str, doomed))

        def verdict() -> str:
            left = self.one(f"SELECT count(*) FROM cases WHERE id IN ({marks})")
            events = self.one(f"SELECT count(*) FROM events WHERE case_id IN ({marks})")
            if left == len(doomed) and events > 0:
                return "none"
            if left == 0 and events == 0:
                return "all"
            return f"purge of {len(doomed)} closed cases: {left} left, {events} of their events left"

        return Op(kind="purge", args=["purge", "--closed-before", stamp], verdict=verdict)

    def op_attach(self, r: int, stdin: bool = False) -> Op:
        case = self.rng.choice(self.block_cases)
        size = self.rng.randint(4, 12) << 20
        path = self.inputs / f"doc-{r}.bin"
        path.write_bytes(self.rng.randbytes(size))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        events = self.one("SELECT count(*) FROM events WHERE case_id = ?", (case,))

        def verdict() -> str:
            docs = self.query("SELECT size, length(content) FROM documents WHERE sha256 = ?", (sha,))
            links = self.one("SELECT count(*) FROM attachments WHERE sha256 = ?", (sha,))
            added = self.one("SELECT count(*) FROM events WHERE case_id = ?", (case,)) - events
            if not docs and links == 0 and added == 0:
                return "none"
            if docs == [(size, size)] and links == 1 and added == 1:
                return "all"
            return f"attach of {size} bytes to C-{case}: documents {docs}, {links} attachments, {added} new events"

        small = self.inputs / f"doc-{r}-again.bin"
        small.write_bytes(self.rng.randbytes(1000))
        if stdin:
            args = ["attach", f"C-{case}", "passport", "-", "--filename", f"doc-{r}.bin"]
            return Op(kind="attach-stdin", args=args, stdin=path, verdict=verdict,
                      again=["attach", f"C-{case}", "passport", "-"], again_stdin=small)  # fmt: skip
        return Op(kind="attach", args=["attach", f"C-{case}", "passport", str(path)], verdict=verdict,
                  again=["attach", f"C-{case}", "passport", str(small)])  # fmt: skip

    def op_attach_stdin(self, r: int) -> Op:
        return self.op_attach(r, stdin=True)

    def op_export(self, r: int) -> Op:
        fmt = self.rng.choice(["csv", "json", "ndjson"])
        target = self.out / f"export-{r}.{fmt}"
        old = b"an older export\n" if self.rng.random() < 0.5 else None
        if old is not None:
            target.write_bytes(old)
        cases = self.one("SELECT count(*) FROM cases")

        def verdict() -> str:
            if not target.exists():
                return "none" if old is None else f"export -o {target.name}: the old file is gone"
            data = target.read_bytes()
            if data == old:
                return "none"
            try:
                text = data.decode("utf-8")
                if fmt == "csv":
                    n = len(list(csv.reader(text.splitlines(keepends=True)))) - 1
                elif fmt == "json":
                    n = len(json.loads(text))
                else:
                    n = len([json.loads(line) for line in text.splitlines() if line.strip()])
            except (ValueError, UnicodeDecodeError) as e:
                return f"export -o {target.name}: half a file ({len(data)} bytes): {e}"
            if n != cases or not text.endswith("\n"):
                return f"export -o {target.name}: {n} of {cases} cases ({len(data)} bytes)"
            return "all"

        again = ["export", "-o", str(self.out / f"export-{r}-again.csv"), "--limit", "5"]
        return Op(kind="export", args=["export", "-o", str(target)], verdict=verdict, again=again)

    def op_backup(self, r: int) -> Op:
        target = self.out / f"backup-{r}.db"
        old = b"an older backup\n" if self.rng.random() < 0.3 else None
        if old is not None:
            target.write_bytes(old)
        cases = self.one("SELECT count(*) FROM cases")
        events = self.one("SELECT count(*) FROM events")

        def verdict() -> str:
            if not target.exists():
                return "none" if old is None else f"db backup {target.name}: the old file is gone"
            if target.read_bytes() == old:
                return "none"
            try:
                conn = sqlite3.connect(f"{target.absolute().as_uri()}?mode=ro", uri=True)
                try:
                    ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
                    got = (conn.execute("SELECT count(*) FROM cases").fetchone()[0],
                           conn.execute("SELECT count(*) FROM events").fetchone()[0])  # fmt: skip
                finally:
                    conn.close()
            except sqlite3.Error as e:
                return f"db backup {target.name}: not a usable database: {e}"
            if ok != "ok" or got != (cases, events):
                return f"db backup {target.name}: integrity {ok}, {got} cases/events of {(cases, events)}"
            return "all"

        force = ["--force"] if old is not None else []
        again = ["db", "backup", str(self.out / f"backup-{r}-again.db")]
        return Op(kind="backup", args=["db", "backup", str(target), *force], verdict=verdict, again=again)

    # --- one round --------------------------------------------------------------

    def leftovers(self, pid: int) -> list[Path]:
        mine = f"{TMP_PREFIX}{pid}-"
        return [p for d in (self.out, self.tmp, self.db.parent) for p in d.iterdir() if p.name.startswith(mine)]

    def round(self, r: int) -> None:
        f = self.figures
        kind = self.rng.choices(self.kinds, weights=[WEIGHTS[k] for k in self.kinds])[0]
        op = self.prepare(kind, r)
        share = self.rng.uniform(0.3, 1.1)
        delay = share * self.usual[op.kind]
        f.rounds += 1
        f.by_kind[op.kind] += 1
        label = f"round {r} ({op.kind}: casectl {' '.join(op.args)})".replace(str(self.work), "$WORK")

        errfile = self.work / "stderr.txt"
        with open(op.stdin, "rb") if op.stdin else contextlib.nullcontext(subprocess.DEVNULL) as src, \
                open(errfile, "w+b") as err:  # fmt: skip
            start = time.monotonic()
            proc = subprocess.Popen(
                [*self.cmd, *op.args], stdin=src, stdout=subprocess.DEVNULL, stderr=err, env=self.env
            )
            try:
                code = proc.wait(timeout=delay)
                killed = False
                self.usual[op.kind] = (self.usual[op.kind] + time.monotonic() - start) / 2
            except subprocess.TimeoutExpired:
                holder = write_locked_by(self.db)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed, code = True, None
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")

        if not killed and code != 0:
            f.failures.append(f"{label}: exited {code} before its kill: {stderr.strip()[-500:]}")
        if "Traceback" in stderr:
            f.failures.append(f"{label}: a traceback: {stderr.strip()[-500:]}")

        check = self.casectl("db", "check")
        if check.returncode != 0:
            f.failures.append(f"{label}: db check exited {check.returncode}: {(check.stdout + check.stderr)[-800:]}")

        outcome = op.verdict()
        if outcome not in ("none", "all"):
            f.failures.append(f"{label}: {outcome}")
        left = self.leftovers(proc.pid)  # a killed process removes nothing: these were there at the kill
        if killed:
            f.killed += 1
            if holder == proc.pid:
                f.mid_transaction += 1
                where = "mid-transaction"
            elif outcome == "all":
                f.after_commit += 1
                where = "after commit"
            elif left:
                f.mid_write += 1
                where = "mid-write"
            else:
                f.before_change += 1
                where = "before any change"
        else:
            f.finished += 1
            where = "finished"
            if outcome != "all":
                f.failures.append(f"{label}: finished with exit 0 but its effects are not there")
        f.outcome_by_kind.setdefault(op.kind, Counter())[where] += 1

        if left:
            f.left_temp += len(left)
            where += f", {len(left)} temporary file{'s' if len(left) > 1 else ''} left"
            if op.again is None:
                f.failures.append(f"{label}: left temporary files {[p.name for p in left]}")
            else:
                again = self.casectl(*op.again, stdin=op.again_stdin)
                still = [p.name for p in left if p.exists()]
                if again.returncode != 0:
                    f.failures.append(f"{label}: the next run exited {again.returncode}: {again.stderr[-500:]}")
                if still:
                    f.failures.append(f"{label}: the next run of the same command left {still} behind")
                else:
                    where += " (removed by the next run)"
                f.cleaned_temp += len(left) - len(still)
        print(f"  {label}: {where}, after {delay:.2f}s, {outcome if outcome in ('none', 'all') else 'FAILED'}",
              flush=True)  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40, help="commands to start and kill (default 40)")
    ap.add_argument("--seed", type=int, default=1, help="fixes every random choice (default 1)")
    ap.add_argument("--db", type=Path, help="database file to create (default: in a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (printed at the end)")
    ap.add_argument("--kinds", help=f"only these commands, comma-separated (default all: {','.join(WEIGHTS)})")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else None
    if kinds and set(kinds) - set(WEIGHTS):
        ap.error(f"unknown kinds: {', '.join(sorted(set(kinds) - set(WEIGHTS)))}; available: {', '.join(WEIGHTS)}")
    t = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="casectl-crash-"))
    db = args.db.absolute() if args.db else work / "cases.db"
    if db.exists():
        print(f"crash: {db} exists; give the path of a new database", file=sys.stderr)
        return 2
    crash = Crash(work, db, args.seed, kinds)
    try:
        crash.setup()
        for r in range(1, args.rounds + 1):
            crash.round(r)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    f = crash.figures
    for kind in sorted(f.outcome_by_kind):
        print(f"  {kind:13} " + ", ".join(f"{n} {w}" for w, n in sorted(f.outcome_by_kind[kind].items())))
    for failure in f.failures:
        print(f"FAIL {failure}")
    print(
        f"crash: {f.rounds} rounds (seed {args.seed}) in {time.monotonic() - t:.1f}s: {f.killed} killed "
        f"({f.mid_transaction} mid-transaction, {f.mid_write} mid-write, {f.before_change} before any change, "
        f"{f.after_commit} after commit), "
        f"{f.finished} finished first; {f.left_temp} temporary files left by kills, {f.cleaned_temp} removed by "
        f"the next run; {len(f.failures)} failures" + (f"; kept {work}" if args.keep else "")
    )
    return 1 if f.failures else 0


if __name__ == "__main__":
    sys.exit(main())
