"""scripts/crash.py: real casectl processes killed with SIGKILL mid-write leave a database that
checks, effects that are all or nothing, no half-written files and no temporary files behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "crash.py"
SUMMARY = re.compile(
    r"^crash: 6 rounds \(seed 3\) in [\d.]+s: (\d+) killed \((\d+) mid-transaction, (\d+) mid-write, (\d+) before any change, "
    r"(\d+) after commit\), (\d+) finished first; (\d+) temporary files left by kills, (\d+) removed by the next run; "
    r"0 failures$",
    re.MULTILINE,
)


def test_six_kills_leave_nothing_half_done(tmp_path):
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "6", "--seed", "3", "--db", str(tmp_path / "crash.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    m = SUMMARY.search(r.stdout)
    assert m, r.stdout
    killed, mid, writing, before, after, finished, left, removed = map(int, m.groups())
    assert killed + finished == 6
    assert mid + writing + before + after == killed
    assert removed == left
    assert "FAIL" not in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
