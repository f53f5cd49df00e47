"""The cron digest: contents agree with `list`, sent to a real aiosmtpd server,
watermark moved only after a successful send, one digest when two start at once."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC

import pytest

from conftest import casectl_bin, raw_connect
from outside_servers import SmtpServer, free_port, parts

T0 = "2030-01-01T09:00:00Z"


def at(hours: float) -> dict[str, str]:
    from datetime import datetime, timedelta

    t = datetime(2030, 1, 1, 9, tzinfo=UTC) + timedelta(hours=hours)
    return {"CASECTL_NOW": t.strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", T0)


@pytest.fixture
def cases(cli, db):
    """Four simple cases; one approved, one declined (with a private note), two open."""
    ids = [cli("create", "-w", "simple", "--subject-name", f"Person {i}").stdout.strip() for i in range(4)]
    cli("approve", ids[0], env=at(1))
    cli("note", ids[1], "--private", "PRIVATE-NOTE-do-not-mail", env=at(1))
    cli("reject", ids[1], "--reason", "sanctions hit", env=at(1))
    return ids


def settings(db_path):
    conn = raw_connect(db_path)
    try:
        return dict(conn.execute("SELECT key, value FROM settings WHERE key LIKE 'digest.%'"))
    finally:
        conn.close()


def test_dry_run_json_agrees_with_list(cli, cases):
    d = cli.json("digest", "--dry-run", "--since", "2030-01-01", "--format", "json", env=at(2))
    assert [c["id"] for c in d["decided"]["cases"]] == [cases[0], cases[1]]
    assert d["decided"]["cases"][1]["reason"] == "sanctions hit"
    assert d["new"]["total"] == 4
    by_status = {r["status"]: r["count"] for r in d["by_status"]}
    for status, n in by_status.items():
        assert len(cli.json("list", "--status", status, "--json")) == n
    assert d["open"] == len(cli.json("list", "--open", "--json")) == 2
    assert [c["id"] for c in d["waiting_longest"]] == cases[2:]
    for fmt in ("json", "text", "html"):
        out = cli("digest", "--dry-run", "--since", "2030-01-01", "--format", fmt, env=at(2)).stdout
        assert "PRIVATE-NOTE" not in out


def test_dry_run_moves_no_watermark(cli, cases, db):
    text = cli("digest", "--dry-run", env=at(2)).stdout
    assert "Decided or completed (2)" in text and "sanctions hit" in text
    assert settings(db) == {}


def test_sla_breaches_are_the_overdue_cases(cli, cases):
    later = at(24 * 30)
    d = cli.json("digest", "--dry-run", "--json", env=later)
    overdue = [c["id"] for c in cli.json("list", "--overdue", "--json", env=later)]
    assert overdue and [c["id"] for c in d["sla_breaches"]["cases"]] == overdue == cases[2:]
    assert d["sla_breaches"]["total"] == 2


def test_sent_digest_reports_each_decision_once(cli, cases, smtp, db):
    out = cli("digest", "--to", "boss@example.com", "--to", "ops@example.com", env=at(2))
    assert out.stdout.startswith("digest sent to boss@example.com, ops@example.com: 2 decided, 4 new")
    [(rcpts, msg)] = smtp.messages
    assert rcpts == ["boss@example.com", "ops@example.com"]
    assert msg["Subject"] == "casectl digest: 2 decided, 4 new, 0 SLA breaches, 2 open"
    body = parts(msg)
    assert set(body) == {"text/plain", "text/html"}
    assert cases[0] in body["text/plain"] and "sanctions hit" in body["text/html"]
    assert "PRIVATE-NOTE" not in body["text/plain"] + body["text/html"]
    assert settings(db)["digest.last_sent_at"] == at(2)["CASECTL_NOW"]
    # The next day: only what happened since.
    cli("approve", cases[2], env=at(20))
    d = cli.json("digest", "--to", "boss@example.com", "--json", env=at(24))
    assert d["sent"] is True
    assert [c["id"] for c in d["digest"]["decided"]["cases"]] == [cases[2]]
    assert d["digest"]["new"]["total"] == 0
    assert len(smtp.messages) == 2


def test_failed_send_is_reported_again_next_time(cli, cases, db, monkeypatch):
    port = free_port()
    monkeypatch.setenv("CASECTL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CASECTL_SMTP_PORT", str(port))
    result = cli("digest", "--to", "boss@example.com", env=at(2), expect=1)
    assert "digest not sent" in result.stderr and "reports these cases again" in result.stderr
    assert settings(db) == {}
    with SmtpServer(port=port) as server:
        out = cli("digest", "--to", "boss@example.com", env=at(3))
        assert "2 decided" in out.stdout
        [(_, msg)] = server.messages
        assert cases[1] in parts(msg)["text/plain"]


def test_two_digests_started_at_once_send_one(cli, cases, db):
    with SmtpServer(delay=2.0) as server:
        env = {**os.environ, **server.env(), **at(2)}
        cmd = [casectl_bin(), "digest", "--to", "boss@example.com"]
        procs = [
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert len(server.messages) == 1
        said = sorted(o[0] + o[1] for o in outs)
        assert any("another digest" in s and "nothing sent" in s for s in said)
        assert any(s.startswith("digest sent") for s in said)
    assert "digest.claim" not in settings(db)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--since", "yesterday-ish", "--to", "a@example.com"], 2, "--since: 'yesterday-ish' is not a date"),
        (["--dry-run", "--format", "xml"], 2, "unknown format 'xml'"),
        ([], 2, "no recipients"),
        (["--to", "a@example.com"], 2, "no SMTP server configured"),
    ],
)
def test_bad_input_is_refused_and_moves_nothing(cli, cases, db, args, code, message):
    result = cli("digest", *args, expect=code)
    assert message in result.stderr
    assert settings(db) == {}


def test_an_activity_decision_is_not_a_case_decision(cli, cases):
    case = cli("create", "-w", "screening").stdout.strip()
    cli("activity", case, "A-1", "state", "complete", env=at(1))
    cli("activity", case, "A-1", "decide", "reviewed", env=at(1))
    d = cli.json("digest", "--dry-run", "--since", "2030-01-01", "--format", "json", env=at(2))
    assert case not in [c["id"] for c in d["decided"]["cases"]]
    assert [c["id"] for c in d["decided"]["cases"]] == [cases[0], cases[1]]
