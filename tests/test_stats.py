"""`casectl stats`: counts agree with `list`, period and previous period, breach rate, workload, --by."""

from __future__ import annotations


def test_stats_figures_agree_with_list(cli, db, monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", "2026-01-05T00:00:00Z")  # previous period: opened 1
    cli("create", "--workflow", "simple", "--assignee", "ann")
    monkeypatch.setenv("CASECTL_NOW", "2026-02-01T00:00:00Z")
    for who in ("ann", "bob", "bob"):
        cli("create", "--workflow", "simple", "--assignee", who)
    monkeypatch.setenv("CASECTL_NOW", "2026-02-02T00:00:00Z")
    cli("approve", "C-2")  # decided after 24h, within 48h
    monkeypatch.setenv("CASECTL_NOW", "2026-02-04T00:00:00Z")
    cli("approve", "C-3")  # 72h: breached
    doc = cli.json(
        "stats",
        "--since",
        "2026-01-20",
        "--until",
        "2026-02-10",
        "--compare",
        "previous",
        "--json",
        env={"CASECTL_NOW": "2026-02-10T00:00:00Z"},
    )
    assert doc["open"] == len(cli("list", "--open", "--ids").stdout.split()) == 2
    assert doc["closed_total"] == 2
    p = doc["period"]
    assert (p["opened"], p["closed"], p["sla_breached"], p["sla_breach_rate"]) == (3, 2, 1, 0.5)
    assert p["median_decision_hours"] == 48.0
    assert doc["previous"]["opened"] == 1 and doc["change"]["opened"] == 2
    assert {w["assignee"]: w["open"] for w in doc["workload"]} == {"ann": 1, "bob": 1}
    assert doc["overdue"] == 2
    by = cli.json("stats", "--by", "assignee", "--json", env={"CASECTL_NOW": "2026-02-10T00:00:00Z"})
    assert {g["assignee"]: (g["open"], g["closed_total"]) for g in by["groups"]} == {"ann": (1, 1), "bob": (1, 1)}
    text = cli("stats", "--workflow", "simple").stdout
    assert "open:" in text and "median time to decision" in text


def test_stats_bad_input(cli, db):
    assert "not one of" in cli("stats", "--by", "colour", expect=2).stderr
    assert "--compare previous" in cli("stats", "--compare", "last-year", expect=2).stderr
    assert "must be before" in cli("stats", "--since", "2026-02-01", "--until", "2026-01-01", expect=2).stderr
    assert "not a date" in cli("stats", "--since", "the day before", expect=2).stderr


def test_stats_counts_agree_with_list_under_filters(cli, db, monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", "2026-01-05T00:00:00Z")
    for wf, who in (("simple", "ann"), ("simple", "bob"), ("kyb", "ann"), ("simple", "ann")):
        cli("create", "--workflow", wf, "--assignee", who)
    cli("approve", "C-4")
    env = {"CASECTL_NOW": "2026-03-01T00:00:00Z"}  # long past every SLA
    for args in ((), ("--workflow", "simple"), ("--assignee", "ann"), ("--workflow", "kyb", "--assignee", "bob")):
        doc = cli.json("stats", *args, "--json", env=env)
        count = lambda *more: len(cli("list", *args, *more, "--ids", env=env).stdout.split())  # noqa: E731
        assert doc["open"] == count("--open")
        assert doc["closed_total"] == count("--closed")
        assert doc["overdue"] == count("--overdue")
    assert cli.json("stats", "--workflow", "simple", "--json", env=env)["overdue"] == 2
