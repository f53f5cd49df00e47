"""Time you can believe: the clock is the machine's unless the override is switched on."""

from __future__ import annotations

from conftest import snapshot


def test_the_clock_override_needs_to_be_switched_on(cli, db, monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", "2001-01-01T00:00:00Z")
    monkeypatch.delenv("CASECTL_ALLOW_CLOCK")
    before = snapshot(db)
    r = cli("create", "-w", "simple", expect=2)
    assert "CASECTL_NOW is set but the clock override is off" in r.stderr and "CASECTL_ALLOW_CLOCK=1" in r.stderr
    assert snapshot(db) == before
    monkeypatch.setenv("CASECTL_ALLOW_CLOCK", "1")
    assert cli.json("create", "-w", "simple", "--json")["created_at"] == "2001-01-01T00:00:00Z"
