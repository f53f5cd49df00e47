#!/usr/bin/env python3
"""Benchmark the outbox: what after-command delivery costs when nothing is due,
and how fast `outbox deliver` drains webhooks to a local receiver.

Baselines are measured in the same run: `casectl list` with delivery off vs on
(nothing due), and an empty `outbox deliver` vs one that sends N messages.
The machine's CPU is shared, so treat the figures as rough.

    .venv/bin/python scripts/bench_outbox.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def casectl() -> str:
    return shutil.which("casectl", path=str(Path(sys.executable).parent)) or "casectl"


def run(args, env, check=True):
    p = subprocess.run([casectl(), *args], env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"casectl {' '.join(args)} failed: {p.stderr}")
    return p


def timed(args, env, repeat=7) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        run(args, env)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


class Sink(BaseHTTPRequestHandler):
    count = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        Sink.count += 1
        self.send_response(204)
        self.end_headers()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    tmp = Path(tempfile.mkdtemp(prefix="bench_outbox_"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    base = {k: v for k, v in os.environ.items() if not k.startswith("CASECTL_")}
    env = {
        **base,
        "CASECTL_DB": str(tmp / "bench.db"),
        "CASECTL_CHAIN_KEY_FILE": str(tmp / "bench.db.key"),  # not in ~/.config
        "CASECTL_ACTOR": "bench",
        "CASECTL_NO_DELIVER": "1",
        "WH_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    try:
        run(["init"], env)
        for _ in range(20):
            run(["create", "-w", "simple"], env)
        off = timed(["list"], env)
        on = timed(["list"], {**env, "CASECTL_NO_DELIVER": ""})
        print(f"casectl list, delivery off:          {off * 1000:7.1f} ms (median of 7)")
        print(f"casectl list, delivery on, none due: {on * 1000:7.1f} ms  ratio {on / off:.2f}x")

        empty = timed(["outbox", "deliver"], env, repeat=5)
        run(["hooks", "add", url, "--event", "case.created", "--secret-env", "WH_SECRET"], env)
        t = time.perf_counter()
        for _ in range(n):
            run(["create", "-w", "simple"], env)
        created = time.perf_counter() - t
        t = time.perf_counter()
        out = run(["outbox", "deliver"], env).stdout.strip()
        took = time.perf_counter() - t
        assert Sink.count == n, (Sink.count, out)
        print(f"outbox deliver, nothing due:          {empty * 1000:7.1f} ms")
        print(
            f"outbox deliver, {n} signed webhooks:  {took * 1000:7.1f} ms  "
            f"({n / took:.0f} msg/s; {(took - empty) / n * 1000:.2f} ms per message over the empty run)"
        )
        print(f"(queued by {n} `create` processes in {created:.1f}s; {out})")
    finally:
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
